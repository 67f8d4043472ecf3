"""Data-parallel learning on torch.distributed: process group from torchrun, DDP step.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; `init_distributed`
reads them and joins the group (NCCL on CUDA, gloo on CPU). `DDPLearner` replaces
`Agent.train_step` with the same update whose gradients are averaged by
`torch.nn.parallel.DistributedDataParallel`.

Why the loss is rescaled. Every AMAGO loss term is a masked mean over the valid
(non-padding) transitions of the batch. DDP averages gradients over ranks, i.e. it
takes mean_r grad(mean_valid_r loss) -- which equals the gradient of the masked mean
over the concatenated batch only when every rank holds the same number of valid
transitions. Each rank therefore multiplies its loss by world_size * n_r / N
(n_r: its valid transitions, N: their sum over ranks, one all-reduce of a scalar), so
sum_r (n_r / N) grad(mean_r) = grad(mean over all N): a DDP step is exactly a
single-process step on the concatenated batch, padding or not.

PopArt statistics move with the batch's target moments; the learner injects an
all-reduce as the loss's statistics reduction (`AmagoLoss.set_stats_reduce`), so every
rank applies the same update (and the same Preserve-Outputs rescaling of the critic
output layer, which keeps the replicas' parameters identical). The timestep encoder's
InputNorm statistics are all-reduced the same way, so every rank normalises its inputs
with the statistics of the whole job's batch.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from ..agent.losses import amago_loss
from ..replay.batch import Batch


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job."""

    rank: int = 0
    """Global rank (0 writes checkpoints, logs and evaluates)."""
    world_size: int = 1
    """Number of learner processes."""
    local_rank: int = 0
    """Rank within this node (picks the GPU)."""
    device: str = "cpu"
    """Torch device of this rank ("cpu" or "cuda:<local_rank>")."""
    backend: Optional[str] = None
    """"nccl", "gloo" or None when no process group was created."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None


def launched_by_torchrun() -> bool:
    """True when torchrun (or another launcher using its env vars) started this process."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def init_distributed(device: str = "cpu", backend: Optional[str] = None, timeout_s: float = 3600.0) -> DistContext:
    """Join the process group described by torchrun's env vars.

    device "cpu" -> gloo; "cuda" -> NCCL with this rank on GPU LOCAL_RANK. Without
    torchrun's env vars returns a single-process context and creates no group.
    timeout_s bounds one collective; ranks >= 1 wait at the next one while rank 0
    evaluates, so it must exceed the longest evaluation (torch's default is 10-30 min).
    """
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if not launched_by_torchrun():
        return DistContext(device=device)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    use_cuda = device.startswith("cuda")
    if use_cuda:
        if not torch.cuda.is_available():
            raise ValueError("device='cuda' but torch.cuda.is_available() is False")
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    backend = backend or ("nccl" if use_cuda else "gloo")
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"backend must be 'nccl' or 'gloo', got {backend!r}")
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(seconds=timeout_s))
    return DistContext(rank, world, local, device, backend)


def shutdown_distributed(ctx: DistContext) -> None:
    """Leave the process group (after a final barrier so no rank exits mid-collective)."""
    if ctx.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def rank_seed(seed: int, rank: int) -> int:
    """Seed of one rank's envs / exploration / replay sampler (rank 0 keeps `seed`)."""
    if rank == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), 7919, int(rank)]).generate_state(1)[0] & 0x7FFFFFFF)


def all_reduce_sum(stats: torch.Tensor) -> torch.Tensor:
    """PopArt's statistics reduction for data-parallel learners: [sum y, sum y^2, count]
    summed over every rank, so the moments are those of the whole job's batch."""
    if dist.is_initialized():
        stats = stats.clone()
        dist.all_reduce(stats)
    return stats


class _LossModule(nn.Module):
    """What DDP wraps: forward(batch) = this rank's share of the job-wide loss."""

    def __init__(self, agent: nn.Module, world_size: int):
        super().__init__()
        self.agent = agent
        self.world_size = world_size

    def forward(self, b) -> tuple[torch.Tensor, dict[str, float]]:
        agent = self.agent
        loss, metrics = amago_loss(agent, b)
        n_local = b.mask[:, 1:].sum().to(torch.float64)
        n_all = n_local.clone()
        if dist.is_initialized():
            dist.all_reduce(n_all)
        scale = float(self.world_size * n_local / n_all.clamp_min(1.0))
        return loss * scale, metrics


class DDPLearner:
    """Agent.train_step, data-parallel: DDPLearner(agent, ctx).train_step(batch) -> metrics.

    Each rank passes its own batch (B_r windows); the update applied on every rank is
    the one a single process would apply to the concatenated batch (see module doc).
    Metrics are this rank's (losses of its own batch, unscaled).
    """

    def __init__(self, agent: nn.Module, ctx: DistContext, find_unused_parameters: bool = False):
        """find_unused_parameters: only for agent variants whose loss leaves some online
        parameter without a gradient (DDP then raises at the first backward)."""
        self.agent, self.ctx = agent, ctx
        agent.loss.set_stats_reduce(all_reduce_sum)  # PopArt moments of the whole job's batch
        in_norm = getattr(agent.tstep, "in_norm", None)
        if in_norm is not None:  # and the timestep encoder's input statistics
            in_norm.stats_reduce = all_reduce_sum
        self.module = _LossModule(agent, ctx.world_size)
        if ctx.distributed:
            ids = [torch.device(ctx.device).index] if ctx.device.startswith("cuda") else None
            # No per-forward buffer broadcast: buffers (PopArt moments, sigma-reparam
            # vectors) evolve identically on every rank once synced at construction.
            params = inspect.signature(nn.parallel.DistributedDataParallel).parameters
            sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
            self.ddp: nn.Module = nn.parallel.DistributedDataParallel(
                self.module, device_ids=ids, find_unused_parameters=find_unused_parameters, **sync
            )
        else:
            self.ddp = self.module

    def train_step(self, batch: Any) -> dict[str, float]:
        """One data-parallel gradient step (AdamW, warmup, clip, target EMA), like Agent.train_step."""
        agent = self.agent
        agent.train()
        loss, metrics = self.ddp(Batch.as_tensors(batch, agent.device))
        return agent.apply_loss(loss, metrics)  # DDP all-reduces (averages) the gradients in backward

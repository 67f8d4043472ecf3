"""Agent: networks, target networks, optimizer, one gradient step, and acting with a cache."""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Any, Optional, Union

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn

from ..nets import (
    ActorHead,
    CriticEnsemble,
    GRUState,
    GRUTrajEncoder,
    KVCache,
    TransformerTrajEncoder,
    TstepEncoder,
)
from ..nets.heads import TwoHotValues
from ..replay.batch import Batch
from .config import AgentConfig
from .losses import TARGET_NETS, AmagoLoss, amago_loss
from .multitask import MultiTaskLoss

NOT_OPTIMIZED = ("target.", "maximized.")  # parameter-name prefixes the optimizer leaves alone


def warmup_factor(cfg: AgentConfig, k: int) -> float:
    """The learning-rate factor of update k (0-based): linear warmup over cfg.warmup updates,
    from k / warmup (AMAGO, warmup_from_zero) or (k + 1) / warmup, then 1."""
    if k >= cfg.warmup:
        return 1.0
    return (k if cfg.warmup_from_zero else k + 1) / cfg.warmup


ArrayLike = Union[np.ndarray, torch.Tensor]
TorchBatch = Batch  # the replay Batch is the update's batch type too (Batch.as_tensors)


def action_kind(space: gym.Space) -> tuple[str, int]:
    """(head kind, stored action width A) for a gymnasium action space."""
    if isinstance(space, gym.spaces.Discrete):
        return "discrete", int(space.n)
    if isinstance(space, gym.spaces.Box):
        return "tanh_gaussian", int(math.prod(space.shape))
    if isinstance(space, gym.spaces.MultiBinary):
        return "multibinary", int(math.prod(space.shape))
    raise TypeError(f"action_space must be Discrete, Box or MultiBinary, got {space!r}")


class Agent(nn.Module):
    """AMAGO agent: timestep encoder -> trajectory encoder -> multi-gamma actor/critics.

    Agent(obs_space (gymnasium Dict for ONE env), action_space, config, device)
    - train_step(batch) -> metrics: one AdamW step on amago_loss + target EMA.
    - loss: the AmagoLoss (MultiTaskLoss for agent_type "multitask"), which owns the
      target heads (`target`) and PopArt (`popart`); the Agent registers those two under
      their own names, so state_dict keys (checkpoints) are `target.*` and `popart.*`.
    - init_state(N) / reset_state(state, env_ids) / get_actions(...): acting with a
      per-env KV cache (or GRU state); envs may sit at different time steps.
    """

    def __init__(
        self, obs_space: gym.spaces.Dict, action_space: gym.Space, config: Optional[AgentConfig] = None, device="cpu"
    ):
        super().__init__()
        if not isinstance(obs_space, gym.spaces.Dict):
            raise TypeError(f"obs_space must be a gymnasium.spaces.Dict, got {type(obs_space).__name__}")
        self.config = cfg = config or AgentConfig()
        self.obs_space, self.action_space = obs_space, action_space
        self.kind, self.action_dim = action_kind(action_space)
        self.discrete = self.kind == "discrete"
        G = len(cfg.all_gammas)
        self.tstep = TstepEncoder(
            obs_space,
            1 + self.action_dim,
            cfg.tstep_hidden,
            cfg.tstep_dim,
            n_layers=cfg.tstep_layers,
            style=cfg.tstep_style,
        )
        if cfg.traj_encoder == "transformer":
            self.traj = TransformerTrajEncoder(
                cfg.tstep_dim,
                cfg.d_model,
                cfg.n_heads,
                cfg.n_layers,
                cfg.d_ff,
                cfg.dropout,
                cfg.pos_emb,
                cfg.max_seq_len,
                cfg.max_time,
                cfg.sigma_reparam,
                cfg.head_scaling,
                cfg.qkv_bias,
            )
        else:
            self.traj = GRUTrajEncoder(cfg.tstep_dim, cfg.d_model, cfg.n_layers, cfg.dropout)
        self.actor = ActorHead(cfg.d_model, cfg.head_hidden, cfg.head_layers, self.action_dim, G, self.kind)
        self.multitask = cfg.agent_type == "multitask"
        # the multi-task agent's critics take every action kind as an input and output value bins
        self.critics = CriticEnsemble(
            cfg.d_model,
            cfg.head_hidden,
            cfg.head_layers,
            self.action_dim,
            cfg.all_gammas,
            cfg.num_critics,
            self.discrete and not self.multitask,
            n_out=cfg.value_bins if self.multitask else 1,
            init=cfg.critic_init,
        )
        self.values = (
            TwoHotValues(cfg.value_bins, cfg.value_min, cfg.value_max, cfg.value_symlog) if self.multitask else None
        )
        if self.multitask:
            loss = MultiTaskLoss(cfg, self.kind, self.actor, self.critics, self.values)
        else:
            loss = AmagoLoss(cfg, self.kind, self.actor, self.critics)
        # Kept out of the module tree (its heads are the Agent's own) ...
        self.__dict__["loss"] = loss
        # ... while what it owns is registered here, under the keys checkpoints have.
        self.popart, self.target = loss.popart, loss.target
        if loss.maximized is not None:  # dpg_critics="amago"
            self.maximized = loss.maximized
        self.to(device)
        self.device = torch.device(device)
        named = list(self.named_parameters())
        self._online = [p for n, p in named if not n.startswith(NOT_OPTIMIZED)]
        self._carried = {n: p for n, p in named if n.startswith("maximized.") and p.requires_grad}
        # fused: one kernel over all parameters (CPU and CUDA), the same AdamW update
        self.optimizer = torch.optim.AdamW(self._online, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda k: warmup_factor(cfg, k))
        self.grad_steps = 0

    # ----------------------------------------------------------------- internals
    def online_parameters(self) -> list[nn.Parameter]:
        """What the optimizer steps: everything but the target heads and AMAGO's DPG copy."""
        return list(self._online)

    def carried_grads(self) -> dict[str, nn.Parameter]:
        """dpg_critics="amago": the maximized copy's parameters, whose gradients outlive the
        step (AMAGO never zeroes them; they count in the clip norm). Empty otherwise."""
        return dict(self._carried)

    def train(self, mode: bool = True) -> "Agent":
        super().train(mode)
        self.loss.train(mode)  # its target nets stay in eval mode
        return self

    def autocast(self):
        """The encoders' autocast context for config.precision: "auto" is bf16 on CUDA and
        fp32 on CPU (so CPU tests compare exactly), "bf16" bf16 everywhere, "fp32" none."""
        p = self.config.precision
        if p == "bf16" or (p == "auto" and self.device.type == "cuda"):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def states(self, obs, rl2s, time_idxs, mask=None) -> torch.Tensor:
        """obs {k: (B, T, ...)}, rl2s (B, T, 1+A), time_idxs (B, T) -> s (B, T, D).
        mask (B, T) bool: the real rows (the timestep encoder's input statistics)."""
        return self.traj(self.tstep(obs, rl2s, mask), time_idxs)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints of amago_fast < 0.2 also held target copies of the encoders, which the
        # update no longer uses: drop them instead of failing on unexpected keys.
        for k in [
            k
            for k in state_dict
            if k.startswith(prefix + "target.") and k[len(prefix) + 7 :].split(".")[0] not in TARGET_NETS
        ]:
            del state_dict[k]
        # AMAGO's DPG copy (dpg_critics="amago") exists in one mode only: weights from the
        # other mode load, the copy starting equal to the critics (AMAGO's hard sync).
        copy_keys = [k for k in state_dict if k.startswith(prefix + "maximized.")]
        if getattr(self, "maximized", None) is None:
            for k in copy_keys:
                del state_dict[k]
        elif not copy_keys:
            for k in [k for k in state_dict if k.startswith(prefix + "critics.")]:
                state_dict[prefix + "maximized." + k[len(prefix) + 8 :]] = state_dict[k]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ learning
    def train_step(self, batch: Any) -> dict[str, float]:
        """One gradient step: target EMA, then AdamW on amago_loss (warmup, grad clip)."""
        self.train()
        loss, metrics = amago_loss(self, Batch.as_tensors(batch, self.device))
        return self.apply_loss(loss, metrics)

    def apply_loss(self, loss: torch.Tensor, metrics: dict[str, float]) -> dict[str, float]:
        """backward, grad clip, AdamW + warmup step, target EMA: the optimisation half of
        train_step, shared with data-parallel learners whose loss comes from a DDP wrapper.
        A non-finite loss or gradient norm skips the step (metrics["train/skipped_nonfinite"]
        = 1.0); PopArt statistics moved by the loss's forward are the only state it keeps."""
        self.optimizer.zero_grad(set_to_none=True)
        carried = list(self._carried.values())
        kept = [p.grad for p in carried]  # AMAGO's never-zeroed gradients: this step adds to them
        for p in carried:
            p.grad = None
        loss.backward()
        for p, g in zip(carried, kept):
            if g is not None:
                p.grad = g if p.grad is None else p.grad.add_(g)
        gnorm = torch.nn.utils.clip_grad_norm_(self._online + carried, self.config.grad_clip)
        finite = bool(torch.isfinite(loss.detach())) and bool(torch.isfinite(gnorm))
        metrics["train/skipped_nonfinite"] = 0.0 if finite else 1.0
        metrics["train/grad_norm"] = float(gnorm)
        metrics["train/lr"] = self.scheduler.get_last_lr()[0]
        if not finite:
            # A non-finite loss or gradient would poison every weight through AdamW's
            # moments: skip the whole step (weights, optimizer state, schedule, targets).
            self.optimizer.zero_grad(set_to_none=True)
            for p, g in zip(carried, kept):  # as if this step never happened
                p.grad = g
            return metrics
        self.update_targets()  # before the step, as AMAGO: targets trail by one update
        self.optimizer.step()
        self.scheduler.step()
        self.grad_steps += 1
        metrics["train/lr"] = self.scheduler.get_last_lr()[0]
        return metrics

    @torch.no_grad()
    def update_targets(self, tau: Optional[float] = None) -> None:
        """target <- (1 - tau) target + tau online (parameters); buffers are copied."""
        self.loss.update_targets(self.config.tau if tau is None else tau)

    # -------------------------------------------------------------------- acting
    def init_state(self, num_envs: int):
        """Fresh acting state (empty contexts) for num_envs envs.

        On CUDA a Transformer's KV cache is bf16, the dtype autocast gives q/k/v, so acting
        reaches the Triton decode kernel (an fp32 cache kept it on the PyTorch path)."""
        return self.traj.init_state(num_envs, self.device, dtype=self.acting_cache_dtype())

    def acting_cache_dtype(self) -> torch.dtype:
        """dtype of the acting state: bf16 for a Transformer on CUDA (unless precision is
        "fp32"), fp32 otherwise (a GRU's
        hidden state stays fp32: it is carried across steps, not attended over)."""
        if self.device.type == "cuda" and self.config.traj_encoder == "transformer" and self.config.precision != "fp32":
            return torch.bfloat16
        return torch.float32

    @staticmethod
    def reset_state(state, env_ids) -> None:
        """Clear the contexts of env_ids (array of ints or bool mask) before their new episode."""
        state.reset(torch.as_tensor(np.asarray(env_ids), device=state_device(state)))

    @torch.no_grad()
    def get_actions(
        self,
        obs: dict[str, ArrayLike],
        rl2s: ArrayLike,
        time_idxs: ArrayLike,
        state,
        sample: bool = True,
        return_dist: bool = False,
    ):
        """Act for N envs from one new time step each.

        obs {k: (N, ...)}, rl2s (N, 1+A), time_idxs (N,) -> (raw actions, state)
        raw actions: Discrete -> int64 (N,); Box -> float32 (N, A) in [-1, 1];
        MultiBinary -> int8 (N, A). sample=False takes the mode (evaluation).
        The policy is the last gamma's head. return_dist adds the ActionDist.
        """
        was_training = self.training
        self.eval()
        try:
            dev = self.device
            o = {k: torch.as_tensor(np.asarray(v) if not torch.is_tensor(v) else v, device=dev) for k, v in obs.items()}
            r = torch.as_tensor(rl2s, device=dev, dtype=torch.float32)
            t = torch.as_tensor(time_idxs, device=dev).long().reshape(-1)
            if r.dim() != 2 or r.shape[1] != 1 + self.action_dim:
                raise ValueError(f"rl2s must have shape (N, {1 + self.action_dim}), got {tuple(r.shape)}")
            missing = set(self.tstep.keys) - set(o)
            if missing:
                raise ValueError(f"obs is missing keys {sorted(missing)}")
            n_state = state_num_envs(state)
            sizes = {
                "rl2s": r.shape[0],
                "time_idxs": t.shape[0],
                **{f"obs[{k!r}]": o[k].shape[0] for k in self.tstep.keys},
            }
            bad = {k: v for k, v in sizes.items() if v != n_state}
            if bad:
                raise ValueError(f"state holds {n_state} envs but got leading sizes {bad}")
            with self.autocast():
                x = self.tstep({k: v[:, None] for k, v in o.items()}, r[:, None])[:, 0]  # (N, d_tstep)
                s, state = self.traj.step(x, t, state)  # (N, D)
                dist = self.actor(s.float())
            a = dist.sample() if sample else dist.mode()  # (N, G, A)
            a = a[:, -1]  # the policy gamma
        finally:
            self.train(was_training)
        raw = self.to_raw_actions(a)
        return (raw, state, dist) if return_dist else (raw, state)

    def to_raw_actions(self, a: torch.Tensor) -> np.ndarray:
        """Stored-format action vectors (N, A) -> the env's raw actions."""
        a = a.float().cpu().numpy()
        if self.discrete:
            return a.argmax(-1).astype(np.int64)
        if self.kind == "multibinary":
            return (a > 0.5).astype(np.int8)
        return np.clip(a, -1.0, 1.0).astype(np.float32)


def _check_state(state) -> None:
    if not isinstance(state, (KVCache, GRUState)):
        raise TypeError(f"state must be the KVCache or GRUState from Agent.init_state, got {type(state).__name__}")


def state_device(state) -> torch.device:
    _check_state(state)
    return state.count.device if isinstance(state, KVCache) else state.h.device


def state_num_envs(state) -> int:
    _check_state(state)
    return state.count.shape[0] if isinstance(state, KVCache) else state.h.shape[1]

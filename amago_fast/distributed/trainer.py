"""DistributedTrainer: the Trainer loop on every torchrun rank, gradients averaged by DDP.

Each rank runs its own envs (seeded per rank) into its own replay buffer and samples its
own batches; DDPLearner makes every update the single-process update on the union of
the ranks' batches. Ranks move in lock step (same num_envs, collect_steps and grad
steps), so env_steps -- counted over the whole job -- is the same number on every rank
and every rank reaches each checkpoint together.

Checkpoints (one directory, committed by rank 0 only):

    step_XXXXXXXXXX/weights.safetensors, optimizer.safetensors, state.json  (rank 0)
    step_XXXXXXXXXX/replay/            rank 0's replay shard (the single-process layout)
    step_XXXXXXXXXX/replay_rank<r>/    rank r's shard, r >= 1

Ranks >= 1 save their shard under checkpoints/.shards.<name>/ (ReplayBuffer.save is
itself atomic); after a barrier rank 0 moves them into its temporary checkpoint
directory, and save_checkpoint renames that directory into place and then updates
latest.json -- a crash at any point leaves the previous checkpoint as `latest`.
Resuming with M ranks from N shards: rank r takes shards {s : s % M == r} (or shard
r % N when M > N); with M == N each rank reloads its own shard, sampler state included.
A plain single-process `--resume` also works (it loads rank 0's shard).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..agent import AgentConfig
from ..trainer import Trainer, TrainerConfig
from ..trainer.checkpoint import save_checkpoint, write_json_atomic
from ..trainer.loop import CONFIG_FILE
from .ddp import DDPLearner, DistContext, barrier, rank_seed, shutdown_distributed

SHARD_RE = re.compile(r"^replay_rank(\d+)$")


class _NullLogger:
    """Metrics sink of ranks >= 1 (rank 0 writes metrics.jsonl)."""

    def log(self, record: dict) -> None:
        pass

    def close(self) -> None:
        pass


def replay_shards(ckpt: Path) -> list[Path]:
    """A checkpoint's replay shards in rank order: replay/, replay_rank1/, ..."""
    ranked = sorted((int(m.group(1)), p) for p in Path(ckpt).iterdir() if (m := SHARD_RE.match(p.name)))
    return [Path(ckpt) / "replay"] + [p for _, p in ranked]


def shards_for_rank(n_shards: int, rank: int, world: int) -> list[int]:
    """Which of n_shards saved shards rank `rank` of `world` loads (every shard is
    loaded by some rank; no rank is left without data)."""
    mine = [s for s in range(n_shards) if s % world == rank]
    return mine or [rank % n_shards]


class DistributedTrainer(Trainer):
    """Trainer for one torchrun rank: DistributedTrainer(run_dir, cfg, agent_cfg, resume, ctx=ctx).run()."""

    def __init__(
        self,
        run_dir,
        config: Optional[TrainerConfig] = None,
        agent_config: Optional[AgentConfig] = None,
        resume: bool = False,
        ctx: Optional[DistContext] = None,
    ):
        self.ctx = ctx = ctx or DistContext()
        if config is None and resume and (Path(run_dir) / CONFIG_FILE).exists():
            config = TrainerConfig.from_dict(json.loads((Path(run_dir) / CONFIG_FILE).read_text())["trainer"])
        self.base_cfg = config
        if config is not None:
            # own envs, exploration and sampler per rank; one progress bar
            config = dataclasses.replace(
                config,
                seed=rank_seed(config.seed, ctx.rank),
                device=ctx.device,
                progress=config.progress and ctx.is_main,
            )
        if ctx.is_main:
            self._sweep_stale_shards(Path(run_dir) / "checkpoints")
        barrier(ctx)
        super().__init__(run_dir, config, agent_config, resume)
        if resume and not ctx.is_main and self.grad_steps:
            self._decorrelate_after_resume()
        self.learner = DDPLearner(self.agent, ctx)  # broadcasts rank 0's weights
        self._total: Optional[int] = None

    @property
    def is_main(self) -> bool:
        return self.ctx.is_main

    # ------------------------------------------------------------------ hooks
    def _save_run_config(self) -> None:
        if self.is_main:
            base = self.base_cfg or self.cfg
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(
                self.run_dir / CONFIG_FILE, {"trainer": base.to_dict(), "agent": self.agent_cfg.to_dict()}
            )

    def _make_logger(self):
        return super()._make_logger() if self.is_main else _NullLogger()

    def _load_replay(self, ckpt: Path, relabeler=None):
        from amago_fast.replay import ReplayBuffer

        shards = replay_shards(ckpt)
        rank, world = self.ctx.rank, self.ctx.world_size
        if len(shards) == world:
            return ReplayBuffer.load(shards[rank], relabeler=relabeler)
        # A different rank count: merge this rank's shards into a fresh buffer seeded for
        # this rank (two ranks reading one shard must not draw the same batches).
        buf = ReplayBuffer.from_spaces(
            self.env.observation_space,
            self.env.action_space,
            capacity=self.cfg.buffer_capacity,
            seed=self.cfg.seed,
            relabeler=relabeler,
        )
        for s in shards_for_rank(len(shards), rank, world):
            src = ReplayBuffer.load(shards[s])
            for tid in src.trajectory_ids():
                t = src.trajectory(int(tid))
                buf.add_trajectory(t["obs"], t["rl2s"], t["time_idxs"], t["actions"], t["rews"], t["dones"])
        return buf

    def _decorrelate_after_resume(self) -> None:
        """load_checkpoint restored rank 0's RNG and exploration state on every rank;
        give ranks >= 1 their own streams again (RNG states are not saved per rank)."""
        salt = int(np.random.SeedSequence([self.cfg.seed, self.grad_steps]).generate_state(1)[0] & 0x7FFFFFFF)
        self._seed_everything(salt)
        st = self.explore.state_dict()
        st["rng"] = np.random.default_rng(salt).bit_generator.state
        self.explore.load_state_dict(st)

    @staticmethod
    def _sweep_stale_shards(ckpt_root: Path) -> None:
        if ckpt_root.exists():
            for p in ckpt_root.glob(".shards.*"):
                shutil.rmtree(p, ignore_errors=True)

    # ------------------------------------------------------------------ phases
    def collect(self, steps_per_env: int) -> None:
        """Collect on this rank; env_steps counts the whole job (world_size x local)."""
        per_round = self.cfg.num_envs * self.ctx.world_size
        if self._total is not None:
            steps_per_env = max(1, min(steps_per_env, -(-(self._total - self.env_steps) // per_round)))
        before = self.env_steps
        super().collect(steps_per_env)
        self.env_steps = before + steps_per_env * per_round

    def learn(self, grad_steps: int) -> dict[str, float]:
        sums: dict[str, float] = {}
        for _ in range(grad_steps):
            batch = self.buffer.sample(self.cfg.batch_size, self.seq_len, padded_sampling=self.cfg.padded_sampling)
            for k, v in self.learner.train_step(batch).items():
                sums[k] = sums.get(k, 0.0) + v
            self.grad_steps += 1
        return {k: v / max(1, grad_steps) for k, v in sums.items()}

    def evaluate(self) -> dict[str, float]:
        if self.is_main:
            return super().evaluate()
        self.evals += 1
        return {}

    def checkpoint(self) -> Path:
        """Collective: every rank saves its replay shard; rank 0 commits the checkpoint."""
        self.writer.flush()
        self._needs_reset = True
        name = f"step_{self.env_steps:010d}"
        shard_root = self.ckpt_root / f".shards.{name}"
        if not self.is_main:
            shard_root.mkdir(parents=True, exist_ok=True)
            self.buffer.save(shard_root / f"rank{self.ctx.rank}")
        barrier(self.ctx)
        final = self.ckpt_root / name
        if self.is_main:

            def save_replay(path: Path) -> None:
                self.buffer.save(path)
                for r in range(1, self.ctx.world_size):
                    os.replace(shard_root / f"rank{r}", path.parent / f"replay_rank{r}")

            final = save_checkpoint(
                self.ckpt_root,
                name,
                self.agent,
                self._trainer_state(),
                save_replay=save_replay,
                keep=self.cfg.keep_checkpoints,
            )
            shutil.rmtree(shard_root, ignore_errors=True)
        barrier(self.ctx)
        return final

    def run(self, total_steps: Optional[int] = None) -> dict[str, Any]:
        self._total = self.cfg.total_steps if total_steps is None else total_steps
        return super().run(total_steps)

    def close(self) -> None:
        super().close()
        shutdown_distributed(self.ctx)

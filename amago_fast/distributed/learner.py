"""AsyncLearner: the Trainer loop with collection replaced by ingesting the actors' spool.

    amago-fast train --mode learner --run-dir RUN ...   # learner only (actors started apart)
    amago-fast train --mode both --num-actors 2 ...     # learner + 2 actor subprocesses

Each round: ingest every finished trajectory in RUN/spool/ready (env_steps grows by their
transitions), then, once learning_starts env steps are in, grad_steps_per_round updates;
evaluation, logging and checkpoints as in the synchronous Trainer. Weights are published
to RUN/policy/weights.safetensors (atomically) at start, every publish_every gradient
steps and at every checkpoint. An actor dying changes nothing here but the data rate.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Optional

from ..agent import AgentConfig
from ..trainer import Trainer, TrainerConfig
from ..trainer.checkpoint import write_json_atomic
from ..trainer.loop import CONFIG_FILE
from .actors import POLICY, SPOOL, STOP, AsyncConfig, publish_weights
from .spool import TrajectorySpool

# An actor that dies this soon after starting, this many times in a row, is broken (bad
# install, bad config), not unlucky: stop restarting it and say so instead of looping.
ACTOR_QUICK_EXIT_S = 10.0
ACTOR_MAX_QUICK_EXITS = 5


class IntervalLogger:
    """The learner loops whether or not actors delivered data: a loop's record is logged
    when it holds updates or an evaluation, or when steps_per_round env steps arrived since
    the last line (the synchronous Trainer's one line per collection round), not per idle
    loop."""

    def __init__(self, inner, every_env_steps: int):
        self.inner, self.every, self._last = inner, max(1, int(every_env_steps)), None

    def log(self, record: dict) -> None:
        steps = record.get("env_steps", 0)
        useful = any(k.startswith(("train/", "eval/")) for k in record)
        if useful or self._last is None or steps - self._last >= self.every:
            self.inner.log(record)
            self._last = steps

    def close(self) -> None:
        self.inner.close()


class AsyncLearner(Trainer):
    """AsyncLearner(run_dir, cfg, agent_cfg, resume, async_cfg).run(): learn from actors' data."""

    def __init__(
        self,
        run_dir,
        config: Optional[TrainerConfig] = None,
        agent_config: Optional[AgentConfig] = None,
        resume: bool = False,
        async_cfg: Optional[AsyncConfig] = None,
    ):
        self.async_cfg = async_cfg or AsyncConfig()
        if config is None and resume and (Path(run_dir) / CONFIG_FILE).exists():
            config = TrainerConfig.from_dict(json.loads((Path(run_dir) / CONFIG_FILE).read_text())["trainer"])
        self.base_cfg = config
        if config is not None:  # the learner steps no env: never spawn env subprocesses for it
            config = dataclasses.replace(config, vectorization="sync")
        super().__init__(run_dir, config, agent_config, resume)
        self.spool = TrajectorySpool(self.run_dir / SPOOL)
        (self.spool.root / STOP).unlink(missing_ok=True)
        self.recovered = self.spool.recover()  # ingested after the checkpoint we resumed from
        self.ingested = 0
        self._published_at = -1
        self.actors: list[subprocess.Popen] = []
        self.actor_restarts = 0
        self._spawned_at: dict[int, float] = {}
        self._quick_exits: dict[int, int] = {}  # consecutive exits soon after a start
        self.publish()

    def _save_run_config(self) -> None:
        base = self.base_cfg or self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.run_dir / CONFIG_FILE, {"trainer": base.to_dict(), "agent": self.agent_cfg.to_dict()})

    def _make_logger(self):
        return IntervalLogger(super()._make_logger(), self.cfg.steps_per_round)

    def publish(self) -> None:
        """Write the current weights for the actors (atomic replace)."""
        publish_weights(self.agent, self.run_dir / POLICY, grad_steps=self.grad_steps, env_steps=self.env_steps)
        self._published_at = self.grad_steps

    # ------------------------------------------------------------------ phases
    def collect(self, steps_per_env: int) -> None:
        """Ingest the spool instead of stepping envs (steps_per_env is not used)."""
        self._supervise_actors()
        got = self.spool.ingest(self.buffer)
        self.env_steps += sum(T for _, T in got)
        self.ingested += len(got)
        if not got and (self.env_steps < self.cfg.learning_starts or not self.cfg.grad_steps_per_round):
            time.sleep(self.async_cfg.poll_s)  # nothing to do until actors deliver

    def learn(self, grad_steps: int) -> dict[str, float]:
        out = super().learn(grad_steps)
        if self.grad_steps - self._published_at >= self.async_cfg.publish_every:
            self.publish()
        out["async/ingested_trajectories"] = float(self.ingested)
        out["async/spool_backlog"] = float(len(self.spool.ready()))
        out["async/actor_restarts"] = float(self.actor_restarts)
        out["async/spool_rejected"] = float(self.spool.rejected)  # quarantined to spool/rejected/
        return out

    def checkpoint(self) -> Path:
        path = super().checkpoint()
        self.spool.commit()  # everything ingested so far is inside `path` now
        self.publish()
        return path

    # ------------------------------------------------------------------ actors
    def _spawn_actor(self, actor_id: int) -> subprocess.Popen:
        run_dir = self.run_dir.resolve()
        cmd = [
            sys.executable,
            "-m",
            "amago_fast",
            "train",
            "--mode",
            "actor",
            "--run-dir",
            str(run_dir),
            "--actor-id",
            str(actor_id),
            "--device",
            self.async_cfg.actor_device,
        ]
        # cwd=run_dir: `python -m` puts the cwd first on sys.path, and a caller sitting in a
        # source checkout would otherwise give the actor the unbuilt source package.
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, cwd=run_dir)
        self._spawned_at[actor_id] = time.monotonic()
        return proc

    def start_actors(self, n: int) -> None:
        """Start n `amago-fast train --mode actor` subprocesses (ids 0..n-1)."""
        self.actors = [self._spawn_actor(i) for i in range(n)]

    def _supervise_actors(self) -> None:
        """Restart actors this learner started that died (a restarted actor resumes its
        file numbering; only the dead one's unfinished trajectories are gone)."""
        for i, p in enumerate(self.actors):
            if p.poll() is not None:
                quick = time.monotonic() - self._spawned_at.get(i, 0.0) < ACTOR_QUICK_EXIT_S
                self._quick_exits[i] = self._quick_exits.get(i, 0) + 1 if quick else 0
                if self._quick_exits[i] >= ACTOR_MAX_QUICK_EXITS:
                    raise RuntimeError(
                        f"actor {i} exited with code {p.returncode} right after starting "
                        f"{ACTOR_MAX_QUICK_EXITS} times in a row (see its stderr above); "
                        "not restarting it again"
                    )
                warnings.warn(f"actor {i} exited with code {p.returncode}; restarting it")
                self.actors[i] = self._spawn_actor(i)
                self.actor_restarts += 1

    def stop_actors(self, timeout_s: float = 30.0) -> None:
        """STOP file, then wait; kill what has not exited (it loses only unfinished data)."""
        (self.spool.root / STOP).touch()
        deadline = time.monotonic() + timeout_s
        for p in self.actors:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.actors = []

    def run(self, total_steps: Optional[int] = None) -> dict[str, Any]:
        self.start_actors(self.async_cfg.num_actors)
        try:
            return super().run(total_steps)
        finally:
            self.stop_actors()

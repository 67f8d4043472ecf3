"""Trainer: collect -> store -> sample -> update -> evaluate -> log -> checkpoint."""

from __future__ import annotations

import importlib
import json
import random
import threading
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..agent import Agent, AgentConfig
from .callbacks import check_callbacks, fire
from .checkpoint import (
    NonFiniteWeightsError,
    ResumeError,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    sweep_temp,
    write_json_atomic,
)
from .config import TrainerConfig
from .evaluate import evaluate
from .interrupt import TrainingInterrupted, install_stop_handlers, restore_handlers
from .offline_buffer import offline_replay_buffer
from .progress import BAR_FORMAT, Eta, format_seconds, work_left
from .round_summary import bar_postfix, episode_stats
from .run_files import CONFIG_FILE, trim_metrics
from .sizing import sized_agent_config

# CONFIG_FILE, TrainingInterrupted, sized_agent_config and trim_metrics lived here first
__all__ = ["CONFIG_FILE", "Trainer", "TrainingInterrupted", "sized_agent_config", "trim_metrics"]


def _derived_seed(base: int, *salt: int) -> int:
    """A reproducible 31-bit seed from the run seed and counters."""
    return int(np.random.SeedSequence([base, *salt]).generate_state(1)[0] & 0x7FFFFFFF)


class Trainer:
    """Trains an Agent on one env. Trainer(run_dir, trainer_cfg, agent_cfg).run().

    Checkpoints cut every env's ongoing trajectory (stored, marked truncated so the
    critic bootstraps) and re-seed the envs, in the uninterrupted run as well as after
    a resume: gymnasium envs cannot be saved without pickle, so this is what makes
    `--resume` continue exactly as the uninterrupted run would have.

    Checkpoints are written every cfg.checkpoint_every env steps, every
    cfg.checkpoint_interval_s seconds, after the first update (so any run that learned can
    be evaluated), at the end, and on SIGINT/SIGTERM (then `run` raises TrainingInterrupted).
    `callbacks`: Callback objects (see trainer/callbacks.py); `stop()` ends the run early.
    """

    def __init__(
        self,
        run_dir,
        config: Optional[TrainerConfig] = None,
        agent_config: Optional[AgentConfig] = None,
        resume: bool = False,
        callbacks=None,
    ):
        from amago_fast.envs import EpsilonGreedy, make_env
        from amago_fast.replay import ReplayBuffer

        self.callbacks = check_callbacks(callbacks)
        self.run_dir = Path(run_dir)
        self.ckpt_root = self.run_dir / "checkpoints"
        sweep_temp(self.ckpt_root)  # temp dirs/files of checkpoint writers killed earlier
        ckpt = None
        if resume:
            if not (self.run_dir / CONFIG_FILE).exists():
                raise FileNotFoundError(f"--resume: no {CONFIG_FILE} in run dir {self.run_dir}")
            ckpt = latest_checkpoint(self.ckpt_root)
            if ckpt is None:
                raise ResumeError(
                    f"--resume: {self.run_dir} has no complete checkpoint in {self.ckpt_root} "
                    "(nothing to resume; start a new run in another --run-dir)"
                )
            saved = json.loads((self.run_dir / CONFIG_FILE).read_text())
            config = config or TrainerConfig.from_dict(saved["trainer"])
            agent_config = AgentConfig.from_saved(saved["agent"])  # the run's sized config
        self.cfg = cfg = config or TrainerConfig()
        if cfg.torch_threads:
            torch.set_num_threads(cfg.torch_threads)
        self._seed_everything(cfg.seed)
        for module in cfg.env_modules:  # they register the user's envs
            importlib.import_module(module)
        self.env = make_env(
            cfg.env, num_envs=cfg.num_envs, seed=cfg.seed, vectorization=cfg.vectorization, **cfg.env_args
        )
        self.env.nonfinite = "flag" if cfg.nonfinite == "drop" else "raise"
        acfg = agent_config or AgentConfig()
        if not resume:
            acfg = sized_agent_config(acfg, cfg, self.env.max_episode_steps)
        self.agent_cfg = acfg
        self.agent = Agent(self.env.policy_observation_space, self.env.action_space, acfg, device=cfg.device)
        self.seq_len = cfg.seq_len or max(1, acfg.max_seq_len - 1)
        self.explore = EpsilonGreedy(
            self.env.action_space,
            cfg.num_envs,
            eps_start=cfg.eps_start,
            eps_end=cfg.eps_end,
            anneal_steps=cfg.eps_anneal_steps,
            seed=cfg.seed,
            floor=cfg.eps_floor,
        )
        self.env_steps = self.grad_steps = self.rounds = self.evals = 0
        self.skipped_updates = self.dropped_trajectories = self.dropped_transitions = 0
        self.wall_s = 0.0
        self.last_eval: dict[str, Any] = {}
        self.train_episodes: list[dict] = []
        from amago_fast.relabel import relabeler_for

        relabeler = relabeler_for(cfg.relabel, self.env.observation_space)
        buf_kw = dict(capacity=cfg.buffer_capacity, seed=cfg.seed, relabeler=relabeler)
        if ckpt is not None:
            self.buffer = self._load_replay(ckpt, relabeler)
            state = load_checkpoint(ckpt, self.agent)
            self._load_trainer_state(state)
            if getattr(self, "is_main", True):  # records the resumed run will write again
                trim_metrics(self.run_dir, self.env_steps)
        elif cfg.offline_data:
            self.buffer = self._offline_buffer(buf_kw)
            self._save_run_config()
        else:
            self.buffer = ReplayBuffer.from_spaces(self.env.observation_space, self.env.action_space, **buf_kw)
            self._save_run_config()
        self.writer = self.buffer.stream(cfg.num_envs)
        self._needs_reset = True
        self._act_state = None
        self._cur: Optional[tuple] = None
        self._begun_bad = np.zeros(cfg.num_envs, bool)  # open trajectory starts at a NaN row
        self._tainted = np.zeros(cfg.num_envs, bool)  # episode had NaN data: no train stats
        self._stop_reason: Optional[str] = None
        self.last_checkpoint: Optional[Path] = ckpt

    # ------------------------------------------------------------------ state
    # _load_replay / _save_run_config / _make_logger: overridden by
    # amago_fast.distributed.DistributedTrainer (replay shards per rank, rank-0-only files).
    def _load_replay(self, ckpt: Path, relabeler=None):
        from amago_fast.replay import ReplayBuffer

        return ReplayBuffer.load(ckpt / "replay", relabeler=relabeler)

    def _offline_buffer(self, buf_kw: dict):
        """A buffer with the offline dataset in its protected partition (see offline_data)."""
        return offline_replay_buffer(self.cfg.offline_data, self.env.observation_space, self.env.action_space, **buf_kw)

    def _offline_phase(self, log) -> None:
        """cfg.offline_steps updates on the (offline) buffer before any env step; resumable."""
        cfg = self.cfg
        chunk = max(1, cfg.grad_steps_per_round)
        while self.grad_steps < cfg.offline_steps and self._stop_reason is None:
            before_grad = self.grad_steps
            record = self.learn(min(chunk, cfg.offline_steps - self.grad_steps))
            self.skipped_updates += int(
                round(record.get("train/skipped_nonfinite", 0.0) * (self.grad_steps - before_grad))
            )
            done = self.grad_steps >= cfg.offline_steps
            every = cfg.eval_every  # counts updates in this phase
            if done or (every > 0 and self.grad_steps // every > before_grad // every):
                res = self.evaluate()
                record.update({f"eval/{k}": v for k, v in res.items()})
                fire(self.callbacks, "on_eval", self, res)
            record.update(env_steps=self.env_steps, grad_steps=self.grad_steps)
            record["train/skipped_updates"] = self.skipped_updates
            log.log(record)
            fire(self.callbacks, "on_step", self, record)
            if done or before_grad == 0 or self._stop_reason is not None:
                self._save()

    def _save_run_config(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(
            self.run_dir / CONFIG_FILE, {"trainer": self.cfg.to_dict(), "agent": self.agent_cfg.to_dict()}
        )

    def _make_logger(self):
        from amago_fast.logging import MetricsLogger

        cfg = self.cfg
        return MetricsLogger(
            self.run_dir,
            tensorboard=cfg.tensorboard,
            wandb=cfg.wandb,
            wandb_project=cfg.wandb_project,
            config={"trainer": cfg.to_dict(), "agent": self.agent_cfg.to_dict()},
        )

    def _seed_everything(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def _trainer_state(self) -> dict:
        return {
            "env_steps": self.env_steps,
            "grad_steps": self.grad_steps,
            "rounds": self.rounds,
            "evals": self.evals,
            "wall_s": self.wall_s,
            "last_eval": self.last_eval,
            "explore": self.explore.state_dict(),
            "skipped_updates": self.skipped_updates,
            "dropped_trajectories": self.dropped_trajectories,
            "dropped_transitions": self.dropped_transitions,
        }

    def _load_trainer_state(self, state: dict) -> None:
        for k in ("env_steps", "grad_steps", "rounds", "evals"):
            setattr(self, k, int(state[k]))
        self.wall_s = float(state["wall_s"])
        self.last_eval = state["last_eval"]
        self.explore.load_state_dict(state["explore"])
        for k in ("skipped_updates", "dropped_trajectories", "dropped_transitions"):
            setattr(self, k, int(state.get(k, 0)))  # absent in checkpoints of older versions

    # ------------------------------------------------------------------ phases
    def _reset_envs(self) -> None:
        obs, rl2s, tidx = self.env.reset(seed=_derived_seed(self.cfg.seed, 1, self.rounds))
        self.writer.begin(obs, rl2s, tidx)
        self._act_state = self.agent.init_state(self.cfg.num_envs)
        self.explore.reset_envs(np.ones(self.cfg.num_envs, bool))
        self._cur = (obs, rl2s, tidx)
        self._needs_reset = False
        self._begun_bad = self.env.reset_nonfinite.copy()
        self._tainted = self._begun_bad.copy()

    def collect(self, steps_per_env: int) -> None:
        """Act in every env for steps_per_env steps, streaming transitions to the buffer."""
        if self._needs_reset:
            self._reset_envs()
        obs, rl2s, tidx = self._cur
        state = self._act_state
        drop_mode = self.cfg.nonfinite == "drop"
        for _ in range(steps_per_env):
            raw, state = self.agent.get_actions(obs, rl2s, tidx, state, sample=True)
            res = self.env.step(self.explore(raw))
            # a transition touching a NaN/inf row (zeroed by the env wrapper) is dropped with
            # everything its trajectory staged; recording restarts at the next finite row
            drop = (res.nonfinite | self._begun_bad) if drop_mode else np.zeros(len(res.done), bool)
            # store terminated (not truncated) as done, so time limits bootstrap
            self.writer.step(
                res.action_vecs, res.rews, res.terminated, res.obs, res.rl2s, res.time_idxs, end=res.done & ~drop
            )
            restart = res.done | drop
            if drop.any():
                self._drop(np.flatnonzero(drop))
            if restart.any():
                ids = np.flatnonzero(restart)
                self.writer.begin(
                    {k: v[ids] for k, v in res.next_obs.items()},
                    res.next_rl2s[ids],
                    res.next_time_idxs[ids],
                    env_ids=ids,
                )
            if drop_mode:
                self._begun_bad = res.next_nonfinite & restart
            if res.done.any():
                ids = np.flatnonzero(res.done)
                self.agent.reset_state(state, ids)
                self.explore.reset_envs(res.done)
                self.train_episodes += [res.infos[i] for i in ids if not self._tainted[i]]
                self._tainted[ids] = self._begun_bad[ids]
            obs, rl2s, tidx = res.next_obs, res.next_rl2s, res.next_time_idxs
            self.env_steps += self.cfg.num_envs
        self._cur, self._act_state = (obs, rl2s, tidx), state

    def _drop(self, ids: np.ndarray) -> None:
        """Discard the open trajectories of envs `ids` (NaN/inf data, nonfinite="drop")."""
        lengths = self.writer.open_lengths[ids]
        self.dropped_transitions += int(lengths[lengths > 0].sum())
        self.dropped_trajectories += int((~self._begun_bad[ids]).sum())  # not re-counting NaN-started ones
        self._tainted[ids] = True
        self.writer.discard(ids)

    def learn(self, grad_steps: int) -> dict[str, float]:
        """grad_steps updates on fresh batches (fewer if stop() was called); returns the
        mean of their metrics."""
        sums: dict[str, float] = {}
        done = 0
        for _ in range(grad_steps):
            if self._stop_reason is not None:
                break
            batch = self.buffer.sample(self.cfg.batch_size, self.seq_len, padded_sampling=self.cfg.padded_sampling)
            for k, v in self.agent.train_step(batch).items():
                sums[k] = sums.get(k, 0.0) + v
            self.grad_steps += 1
            done += 1
        return {k: v / max(1, done) for k, v in sums.items()}

    def evaluate(self) -> dict[str, float]:
        res = evaluate(
            self.agent,
            self.cfg.env,
            self.cfg.env_args,
            self.cfg.eval_episodes,
            self.cfg.eval_envs,
            seed=_derived_seed(self.cfg.seed, 2, self.evals),
            max_steps=self.cfg.eval_max_steps,
            sample=self.cfg.eval_sample,
            nonfinite=self.cfg.nonfinite,
        )
        self.evals += 1
        self.last_eval = res
        return res

    def checkpoint(self) -> Path:
        """Cut ongoing trajectories into the buffer, then save everything atomically.
        Raises NonFiniteWeightsError (writing nothing) if the weights hold NaN/inf."""
        if self.cfg.nonfinite == "drop" and self._begun_bad.any():
            self._drop(np.flatnonzero(self._begun_bad))  # never flush a NaN row into replay
        self.writer.flush()
        self._needs_reset = True
        return save_checkpoint(
            self.ckpt_root,
            f"step_{self.env_steps:010d}",
            self.agent,
            self._trainer_state(),
            save_replay=self.buffer.save,
            keep=self.cfg.keep_checkpoints,
        )

    def stop(self, reason: str = "stop() called") -> None:
        """End `run` after the current round (a checkpoint is saved first). Safe from callbacks
        and signal handlers."""
        if self._stop_reason is None:
            self._stop_reason = reason

    def _save(self) -> Path:
        try:
            path = self.checkpoint()
        except NonFiniteWeightsError as e:
            raise NonFiniteWeightsError(
                f"{e}; training stopped at step {self.env_steps}; last finite checkpoint: "
                f"{self.last_checkpoint or 'none'}"
            ) from None
        self.last_checkpoint = path
        self._last_ckpt_t = time.monotonic()
        fire(self.callbacks, "on_checkpoint", self, path)
        return path

    def _install_signal_handlers(self) -> dict:
        """SIGINT/SIGTERM -> stop after this round + checkpoint; a second SIGINT aborts at once.
        Only in the main thread of a single-process run (DDP ranks must checkpoint together)."""
        ctx = getattr(self, "ctx", None)
        if threading.current_thread() is not threading.main_thread() or (ctx is not None and ctx.world_size > 1):
            return {}
        return install_stop_handlers(self.stop, lambda: self._stop_reason is not None)

    # ------------------------------------------------------------------ loop
    def _due(self, every: int, before: int) -> bool:
        return every > 0 and self.env_steps // every > before // every

    def run(self, total_steps: Optional[int] = None) -> dict[str, Any]:
        """Train until total_steps env steps (default cfg.total_steps); returns last eval.
        Raises TrainingInterrupted after SIGINT/SIGTERM (a checkpoint is saved first)."""
        cfg = self.cfg
        total = cfg.total_steps if total_steps is None else total_steps
        log = self._make_logger()
        bar = None
        if cfg.progress:
            from tqdm import tqdm

            bar = tqdm(
                total=total, initial=min(self.env_steps, total), unit="step", dynamic_ncols=True, bar_format=BAR_FORMAT
            )
        eta = Eta()
        self._stop_reason = None
        self._last_ckpt_t = time.monotonic()
        old_handlers = self._install_signal_handlers()
        t0 = time.perf_counter() - self.wall_s
        saved_at = -1
        fire(self.callbacks, "on_train_start", self)
        try:
            if cfg.offline_steps and self.env_steps == 0:
                self._offline_phase(log)
            while self.env_steps < total and self._stop_reason is None:
                before, before_grad = self.env_steps, self.grad_steps
                tc = time.perf_counter()
                self.collect(min(cfg.collect_steps, -(-(total - self.env_steps) // cfg.num_envs)))
                eta.observe("collect", time.perf_counter() - tc, self.env_steps - before)
                record: dict[str, Any] = {}
                # only finished trajectories are stored: long episodes may leave it empty
                ready = self.env_steps >= cfg.learning_starts and self.buffer.num_trajectories > 0
                if ready and cfg.grad_steps_per_round:
                    tl = time.perf_counter()
                    record.update(self.learn(cfg.grad_steps_per_round))
                    n = self.grad_steps - before_grad
                    eta.observe("learn", time.perf_counter() - tl, n)
                    self.skipped_updates += int(round(record.get("train/skipped_nonfinite", 0.0) * n))
                    record["train/skipped_updates"] = self.skipped_updates
                self.rounds += 1
                if self.train_episodes:
                    record.update(episode_stats(self.train_episodes))
                    self.train_episodes = []
                if cfg.nonfinite == "drop":
                    record["data/dropped_trajectories"] = self.dropped_trajectories
                    record["data/dropped_transitions"] = self.dropped_transitions
                finished = self.env_steps >= total
                if self._due(cfg.eval_every, before) or finished:
                    te = time.perf_counter()
                    res = self.evaluate()
                    eta.observe("eval", time.perf_counter() - te, 1)
                    record.update({f"eval/{k}": v for k, v in res.items()})
                    fire(self.callbacks, "on_eval", self, res)
                self.wall_s = time.perf_counter() - t0
                record.update(
                    env_steps=self.env_steps,
                    grad_steps=self.grad_steps,
                    wall_s=self.wall_s,
                    epsilon=float(self.explore.ceiling()),
                )
                log.log(record)
                fire(self.callbacks, "on_step", self, record)
                if bar is not None:
                    self._update_bar(bar, before, eta, total)
                first_update = before_grad == 0 and self.grad_steps > 0
                timed = (
                    cfg.checkpoint_interval_s > 0 and time.monotonic() - self._last_ckpt_t >= cfg.checkpoint_interval_s
                )
                if self._due(cfg.checkpoint_every, before) or finished or first_update or timed:
                    self._save()
                    saved_at = self.env_steps
            if self._stop_reason is not None and self.env_steps > 0 and saved_at != self.env_steps:
                self._save()
        finally:
            restore_handlers(old_handlers)
            log.close()
            if bar is not None:
                bar.close()
            fire(self.callbacks, "on_train_end", self)
        if self._stop_reason in ("SIGINT", "SIGTERM"):
            path = self.last_checkpoint if self.env_steps > 0 or self.grad_steps > 0 else None
            raise TrainingInterrupted(self.env_steps, path, self._stop_reason)
        return self.last_eval

    def _update_bar(self, bar, before: int, eta: Eta, total: int) -> None:
        cfg = self.cfg
        bar.update(self.env_steps - before)
        left = work_left(
            self.env_steps,
            total,
            max(1, self.env_steps - before),
            cfg.learning_starts,
            cfg.grad_steps_per_round,
            cfg.eval_every,
        )
        bar.set_postfix(bar_postfix(self.grad_steps, self.last_eval, format_seconds(eta.remaining(**left))))

    def close(self) -> None:
        self.env.close()

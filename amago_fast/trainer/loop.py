"""Trainer: collect -> store -> sample -> update -> evaluate -> log -> checkpoint."""
from __future__ import annotations

import dataclasses
import importlib
import json
import random
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..agent import Agent, AgentConfig
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, write_json_atomic
from .config import TrainerConfig
from .evaluate import evaluate

CONFIG_FILE = "config.json"


def _derived_seed(base: int, *salt: int) -> int:
    """A reproducible 31-bit seed from the run seed and counters."""
    return int(np.random.SeedSequence([base, *salt]).generate_state(1)[0] & 0x7FFFFFFF)


def sized_agent_config(agent_cfg: AgentConfig, cfg: TrainerConfig, max_episode_steps: Optional[int]) -> AgentConfig:
    """Fit the context to the env: a whole episode (T transitions -> T+1 tokens) when
    the env has a known, finite limit and context_from_env is on."""
    if not cfg.context_from_env or not max_episode_steps:
        return agent_cfg
    tokens = int(max_episode_steps) + 1
    return dataclasses.replace(agent_cfg, max_seq_len=tokens, max_time=max(agent_cfg.max_time, tokens))


class Trainer:
    """Trains an Agent on one env. Trainer(run_dir, trainer_cfg, agent_cfg).run().

    Checkpoints cut every env's ongoing trajectory (stored, marked truncated so the
    critic bootstraps) and re-seed the envs, in the uninterrupted run as well as after
    a resume: gymnasium envs cannot be saved without pickle, so this is what makes
    `--resume` continue exactly as the uninterrupted run would have.
    """

    def __init__(self, run_dir, config: Optional[TrainerConfig] = None, agent_config: Optional[AgentConfig] = None,
                 resume: bool = False):
        from amago_fast.envs import EpsilonGreedy, make_env
        from amago_fast.replay import ReplayBuffer

        self.run_dir = Path(run_dir)
        self.ckpt_root = self.run_dir / "checkpoints"
        ckpt = latest_checkpoint(self.ckpt_root) if resume else None
        if resume:
            if not (self.run_dir / CONFIG_FILE).exists():
                raise FileNotFoundError(f"--resume: no {CONFIG_FILE} in run dir {self.run_dir}")
            saved = json.loads((self.run_dir / CONFIG_FILE).read_text())
            config = config or TrainerConfig.from_dict(saved["trainer"])
            agent_config = AgentConfig.from_dict(saved["agent"])  # the run's sized config
        self.cfg = cfg = config or TrainerConfig()
        if cfg.torch_threads:
            torch.set_num_threads(cfg.torch_threads)
        self._seed_everything(cfg.seed)
        for module in cfg.env_modules:  # they register the user's envs
            importlib.import_module(module)
        self.env = make_env(cfg.env, num_envs=cfg.num_envs, seed=cfg.seed, vectorization=cfg.vectorization, **cfg.env_args)
        acfg = agent_config or AgentConfig()
        if not resume:
            acfg = sized_agent_config(acfg, cfg, self.env.max_episode_steps)
        self.agent_cfg = acfg
        self.agent = Agent(self.env.policy_observation_space, self.env.action_space, acfg, device=cfg.device)
        self.seq_len = cfg.seq_len or max(1, acfg.max_seq_len - 1)
        self.explore = EpsilonGreedy(self.env.action_space, cfg.num_envs, eps_start=cfg.eps_start,
                                     eps_end=cfg.eps_end, anneal_steps=cfg.eps_anneal_steps, seed=cfg.seed)
        self.env_steps = self.grad_steps = self.rounds = self.evals = 0
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
        else:
            self.buffer = ReplayBuffer.from_spaces(self.env.observation_space, self.env.action_space, **buf_kw)
            self._save_run_config()
        self.writer = self.buffer.stream(cfg.num_envs)
        self._needs_reset = True
        self._act_state = None
        self._cur: Optional[tuple] = None

    # ------------------------------------------------------------------ state
    # _load_replay / _save_run_config / _make_logger: overridden by
    # amago_fast.distributed.DistributedTrainer (replay shards per rank, rank-0-only files).
    def _load_replay(self, ckpt: Path, relabeler=None):
        from amago_fast.replay import ReplayBuffer

        return ReplayBuffer.load(ckpt / "replay", relabeler=relabeler)

    def _save_run_config(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.run_dir / CONFIG_FILE, {"trainer": self.cfg.to_dict(), "agent": self.agent_cfg.to_dict()})

    def _make_logger(self):
        from amago_fast.logging import MetricsLogger

        cfg = self.cfg
        return MetricsLogger(self.run_dir, tensorboard=cfg.tensorboard, wandb=cfg.wandb,
                             wandb_project=cfg.wandb_project, config={"trainer": cfg.to_dict(), "agent": self.agent_cfg.to_dict()})

    def _seed_everything(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def _trainer_state(self) -> dict:
        return {
            "env_steps": self.env_steps, "grad_steps": self.grad_steps, "rounds": self.rounds,
            "evals": self.evals, "wall_s": self.wall_s, "last_eval": self.last_eval,
            "explore": self.explore.state_dict(),
        }

    def _load_trainer_state(self, state: dict) -> None:
        for k in ("env_steps", "grad_steps", "rounds", "evals"):
            setattr(self, k, int(state[k]))
        self.wall_s = float(state["wall_s"])
        self.last_eval = state["last_eval"]
        self.explore.load_state_dict(state["explore"])

    # ------------------------------------------------------------------ phases
    def _reset_envs(self) -> None:
        obs, rl2s, tidx = self.env.reset(seed=_derived_seed(self.cfg.seed, 1, self.rounds))
        self.writer.begin(obs, rl2s, tidx)
        self._act_state = self.agent.init_state(self.cfg.num_envs)
        self.explore.reset_envs(np.ones(self.cfg.num_envs, bool))
        self._cur = (obs, rl2s, tidx)
        self._needs_reset = False

    def collect(self, steps_per_env: int) -> None:
        """Act in every env for steps_per_env steps, streaming transitions to the buffer."""
        if self._needs_reset:
            self._reset_envs()
        obs, rl2s, tidx = self._cur
        state = self._act_state
        for _ in range(steps_per_env):
            raw, state = self.agent.get_actions(obs, rl2s, tidx, state, sample=True)
            res = self.env.step(self.explore(raw))
            # store terminated (not truncated) as done, so time limits bootstrap
            self.writer.step(res.action_vecs, res.rews, res.terminated, res.obs, res.rl2s, res.time_idxs, end=res.done)
            if res.done.any():
                ids = np.flatnonzero(res.done)
                self.writer.begin({k: v[ids] for k, v in res.next_obs.items()}, res.next_rl2s[ids],
                                  res.next_time_idxs[ids], env_ids=ids)
                self.agent.reset_state(state, ids)
                self.explore.reset_envs(res.done)
                self.train_episodes += [res.infos[i] for i in ids]
            obs, rl2s, tidx = res.next_obs, res.next_rl2s, res.next_time_idxs
            self.env_steps += self.cfg.num_envs
        self._cur, self._act_state = (obs, rl2s, tidx), state

    def learn(self, grad_steps: int) -> dict[str, float]:
        """grad_steps updates on fresh batches; returns the mean of their metrics."""
        sums: dict[str, float] = {}
        for _ in range(grad_steps):
            batch = self.buffer.sample(self.cfg.batch_size, self.seq_len, padded_sampling=self.cfg.padded_sampling)
            for k, v in self.agent.train_step(batch).items():
                sums[k] = sums.get(k, 0.0) + v
            self.grad_steps += 1
        return {k: v / max(1, grad_steps) for k, v in sums.items()}

    def evaluate(self) -> dict[str, float]:
        res = evaluate(self.agent, self.cfg.env, self.cfg.env_args, self.cfg.eval_episodes, self.cfg.eval_envs,
                       seed=_derived_seed(self.cfg.seed, 2, self.evals), max_steps=self.cfg.eval_max_steps,
                       sample=self.cfg.eval_sample)
        self.evals += 1
        self.last_eval = res
        return res

    def checkpoint(self) -> Path:
        """Cut ongoing trajectories into the buffer, then save everything atomically."""
        self.writer.flush()
        self._needs_reset = True
        return save_checkpoint(self.ckpt_root, f"step_{self.env_steps:010d}", self.agent, self._trainer_state(),
                               save_replay=self.buffer.save, keep=self.cfg.keep_checkpoints)

    # ------------------------------------------------------------------ loop
    def _due(self, every: int, before: int) -> bool:
        return every > 0 and self.env_steps // every > before // every

    def run(self, total_steps: Optional[int] = None) -> dict[str, Any]:
        """Train until total_steps env steps (default cfg.total_steps); returns last eval."""
        cfg = self.cfg
        total = cfg.total_steps if total_steps is None else total_steps
        log = self._make_logger()
        bar = None
        if cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=min(self.env_steps, total), unit="step", dynamic_ncols=True)
        t0 = time.perf_counter() - self.wall_s
        try:
            while self.env_steps < total:
                before = self.env_steps
                self.collect(min(cfg.collect_steps, -(-(total - self.env_steps) // cfg.num_envs)))
                record: dict[str, Any] = {}
                # only finished trajectories are stored: long episodes may leave it empty
                ready = self.env_steps >= cfg.learning_starts and self.buffer.num_trajectories > 0
                if ready and cfg.grad_steps_per_round:
                    record.update(self.learn(cfg.grad_steps_per_round))
                self.rounds += 1
                if self.train_episodes:
                    eps = self.train_episodes
                    record["train/return_mean"] = float(np.mean([e["episode_return"] for e in eps]))
                    succ = [e["success"] for e in eps if "success" in e]
                    if succ:
                        record["train/success_rate"] = float(np.mean(succ))
                    self.train_episodes = []
                finished = self.env_steps >= total
                if self._due(cfg.eval_every, before) or finished:
                    record.update({f"eval/{k}": v for k, v in self.evaluate().items()})
                self.wall_s = time.perf_counter() - t0
                record.update(env_steps=self.env_steps, grad_steps=self.grad_steps, wall_s=self.wall_s,
                              epsilon=float(self.explore.ceiling()))
                log.log(record)
                if bar is not None:
                    bar.update(self.env_steps - before)
                    post = {"grad": self.grad_steps}
                    if self.last_eval:
                        post["eval_ret"] = round(self.last_eval["return_mean"], 3)
                        if "success_rate" in self.last_eval:
                            post["eval_succ"] = round(self.last_eval["success_rate"], 3)
                    bar.set_postfix(post)
                if self._due(cfg.checkpoint_every, before) or (finished and cfg.checkpoint_every):
                    self.checkpoint()
        finally:
            log.close()
            if bar is not None:
                bar.close()
        return self.last_eval

    def close(self) -> None:
        self.env.close()

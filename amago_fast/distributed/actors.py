"""Actor processes: act with the latest published policy, spool finished trajectories.

    amago-fast train --mode actor --run-dir RUN --actor-id 0     # one actor (any machine
                                                                 # that sees RUN's files)

An actor reads RUN/config.json (written by the learner), builds its envs (seeded per
actor id) and an Agent, and loops: act, step, and hand every finished trajectory to
RUN/spool (see spool.py). Every `refresh_every` env steps it reloads
RUN/policy/weights.safetensors if the learner has published a newer one. It stops when
RUN/spool/STOP appears (the learner writes it when its run ends) or after max_steps.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .ddp import rank_seed
from .spool import TrajectorySpool

POLICY = Path("policy") / "weights.safetensors"
SPOOL = "spool"
STOP = "STOP"


@dataclass
class AsyncConfig:
    """Asynchronous actor/learner settings (`amago-fast train --mode ...`)."""

    num_actors: int = 2
    """Actor processes the learner starts in --mode both (0: start none)."""
    refresh_every: int = 256
    """Env steps of one actor (summed over its envs) between checks for new weights."""
    publish_every: int = 16
    """Learner gradient steps between weight publications."""
    poll_s: float = 0.05
    """Learner sleep when the spool is empty and it cannot learn yet."""
    actor_buffer: int = 100_000
    """Transitions one actor can stage (bounds the longest trajectory)."""
    actor_device: str = "cpu"
    """Device of actor processes."""
    wait_config_s: float = 600.0
    """How long an actor waits for the learner's config.json."""

    def __post_init__(self) -> None:
        for name in ("num_actors",):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("refresh_every", "publish_every", "actor_buffer"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.poll_s <= 0 or self.wait_config_s < 0:
            raise ValueError("poll_s must be > 0 and wait_config_s >= 0")


def publish_weights(agent, path: Path, **meta) -> None:
    """Atomically (temp file, fsync, rename) write agent.state_dict() with string metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in agent.state_dict().items()},
            tmp,
            metadata={k: str(v) for k, v in meta.items()},
        )
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class PolicyWatcher:
    """Reloads published weights into an agent when the file changes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._seen: Optional[tuple] = None

    def maybe_load(self, agent) -> Optional[dict]:
        """Load the file if it is new since the last call; returns its metadata or None."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key == self._seen:
            return None
        # The file is only ever replaced by rename, so this open sees one complete version.
        with safe_open(str(self.path), framework="pt") as f:
            meta = dict(f.metadata() or {})
        agent.load_state_dict(load_file(str(self.path), device=str(agent.device)))
        self._seen = key
        return meta


def _wait_for_config(run_dir: Path, timeout_s: float) -> dict:
    path = run_dir / "config.json"
    t0 = time.monotonic()
    while not path.exists():
        if time.monotonic() - t0 > timeout_s:
            raise FileNotFoundError(f"actor: no {path} after {timeout_s:.0f}s (start the learner first)")
        time.sleep(0.2)
    return json.loads(path.read_text())


def run_actor(run_dir, actor_id: int, acfg: Optional[AsyncConfig] = None, max_steps: Optional[int] = None) -> dict:
    """Collect with the published policy until RUN/spool/STOP exists (or max_steps env
    steps); returns {"env_steps", "trajectories", "weight_loads"}."""
    from amago_fast.agent import Agent, AgentConfig
    from amago_fast.envs import EpsilonGreedy, make_env
    from amago_fast.replay import ReplayBuffer
    from amago_fast.trainer import TrainerConfig

    if isinstance(actor_id, bool) or not isinstance(actor_id, int) or actor_id < 0:
        raise ValueError(f"actor_id must be a non-negative int, got {actor_id!r}")
    acfg = acfg or AsyncConfig()
    run_dir = Path(run_dir)
    saved = _wait_for_config(run_dir, acfg.wait_config_s)
    tcfg, agent_cfg = TrainerConfig.from_dict(saved["trainer"]), AgentConfig.from_saved(saved["agent"])
    seed = rank_seed(tcfg.seed, 1 + actor_id)  # never the learner's (rank-0) streams
    torch.manual_seed(seed)
    np.random.seed(seed)
    N = tcfg.num_envs
    env = make_env(tcfg.env, num_envs=N, seed=seed, vectorization=tcfg.vectorization, **tcfg.env_args)
    agent = Agent(env.policy_observation_space, env.action_space, agent_cfg, device=acfg.actor_device)
    watcher = PolicyWatcher(run_dir / POLICY)
    loads = int(watcher.maybe_load(agent) is not None)
    explore = EpsilonGreedy(
        env.action_space,
        N,
        eps_start=tcfg.eps_start,
        eps_end=tcfg.eps_end,
        anneal_steps=tcfg.eps_anneal_steps,
        seed=seed,
        floor=tcfg.eps_floor,
    )
    buf = ReplayBuffer.from_spaces(env.observation_space, env.action_space, capacity=acfg.actor_buffer, seed=seed)
    writer = buf.stream(N)
    spool = TrajectorySpool(run_dir / SPOOL)
    spool.clear_tmp(actor_id)
    seq0 = seq = spool.next_seq(actor_id)
    stop = run_dir / SPOOL / STOP

    obs, rl2s, tidx = env.reset(seed=seed)
    writer.begin(obs, rl2s, tidx)
    state = agent.init_state(N)
    steps = since_refresh = 0
    try:
        while not stop.exists() and (max_steps is None or steps < max_steps):
            raw, state = agent.get_actions(obs, rl2s, tidx, state, sample=True)
            res = env.step(explore(raw))
            # terminated (not truncated) is stored as done so time limits bootstrap
            committed = writer.step(
                res.action_vecs, res.rews, res.terminated, res.obs, res.rl2s, res.time_idxs, end=res.done
            )
            if res.done.any():
                ids = np.flatnonzero(res.done)
                committed += writer.begin(
                    {k: v[ids] for k, v in res.next_obs.items()},
                    res.next_rl2s[ids],
                    res.next_time_idxs[ids],
                    env_ids=ids,
                )
                agent.reset_state(state, ids)
                explore.reset_envs(res.done)
            for tid in committed:  # read back before the small staging buffer evicts it
                spool.write(buf.trajectory(tid), actor_id, seq)
                seq += 1
            obs, rl2s, tidx = res.next_obs, res.next_rl2s, res.next_time_idxs
            steps += N
            since_refresh += N
            if since_refresh >= acfg.refresh_every:
                since_refresh = 0
                meta = watcher.maybe_load(agent)
                if meta is not None:
                    loads += 1
                    # anneal exploration on the job's env steps, not this actor's alone
                    explore.env_steps = max(explore.env_steps, int(meta.get("env_steps", 0)))
    finally:
        env.close()
    # unfinished trajectories are dropped on purpose: a stopped actor equals a killed one
    return {"env_steps": steps, "trajectories": seq - seq0, "weight_loads": loads}

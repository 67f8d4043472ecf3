"""Record a dataset: roll a policy in a registered env and save the trajectories."""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

import numpy as np

Policy = Callable[[dict, np.ndarray, np.ndarray], Any]
"""policy(obs {key: (N, ...)}, time_idxs (N,), rng) -> raw actions for the N envs."""


def record_dataset(
    env_name: str,
    policy: Policy,
    episodes: int,
    out_dir: str | os.PathLike,
    num_envs: int = 4,
    seed: int = 0,
    env_args: Optional[dict] = None,
) -> dict:
    """Run `policy` until `episodes` episodes finished; save them as an amago_fast replay
    snapshot in `out_dir` (load it with `load_offline_buffer` or `--offline-data`).
    Returns {"episodes", "transitions", "return_mean"}."""
    from ..envs import make_env
    from ..replay import ReplayBuffer

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = make_env(env_name, num_envs=num_envs, seed=seed, **(env_args or {}))
    rng = np.random.default_rng(seed)
    try:
        buf = ReplayBuffer.from_spaces(env.observation_space, env.action_space, capacity=10_000_000, seed=seed)
        writer = buf.stream(num_envs)
        obs, rl2s, tidx = env.reset(seed=seed)
        writer.begin(obs, rl2s, tidx)
        returns: list[float] = []
        while len(returns) < episodes:
            res = env.step(policy(obs, tidx, rng))
            writer.step(res.action_vecs, res.rews, res.terminated, res.obs, res.rl2s, res.time_idxs, end=res.done)
            ids = np.flatnonzero(res.done)
            if len(ids):
                returns += [float(res.infos[i]["episode_return"]) for i in ids]
                writer.begin(
                    {k: v[ids] for k, v in res.next_obs.items()},
                    res.next_rl2s[ids],
                    res.next_time_idxs[ids],
                    env_ids=ids,
                )
            obs, rl2s, tidx = res.next_obs, res.next_rl2s, res.next_time_idxs
        buf.save(out_dir)
    finally:
        env.close()
    return {"episodes": len(returns), "transitions": buf.num_timesteps, "return_mean": float(np.mean(returns))}

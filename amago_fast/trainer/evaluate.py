"""Evaluation: run the policy (mode action, no exploration) on fresh envs."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np


def evaluate(
    agent,
    env_name: str,
    env_args: dict,
    episodes: int,
    num_envs: int = 8,
    seed: Optional[int] = None,
    max_steps: int = 100_000,
    sample: bool = False,
    nonfinite: str = "raise",
) -> dict[str, Any]:
    """Run `episodes` episodes of `env_name` with the agent acting greedily (sample=False).

    Returns {"return_mean", "return_std", "episodes", "length_mean"} plus "success_rate"
    when the env reports success. Episodes are counted in completion order; every env
    keeps running until enough have finished, so short episodes do not dominate (each
    env contributes at most ceil(episodes / num_envs) episodes). nonfinite="drop": episodes
    with NaN/inf observations or rewards are left out and counted in "nonfinite_episodes"
    ("raise": the env's NonFiniteError).
    """
    from amago_fast.envs import make_env

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    num_envs = max(1, min(num_envs, episodes))
    per_env = -(-episodes // num_envs)
    if nonfinite not in ("raise", "drop"):
        raise ValueError(f"nonfinite must be 'raise' or 'drop', got {nonfinite!r}")
    env = make_env(env_name, num_envs=num_envs, seed=seed, **env_args)
    env.nonfinite = "flag" if nonfinite == "drop" else "raise"
    try:
        obs, rl2s, tidx = env.reset(seed=seed)
        tainted = env.reset_nonfinite.copy()
        dropped = 0
        state = agent.init_state(num_envs)
        count = np.zeros(num_envs, int)
        returns, lengths, successes = [], [], []
        for _ in range(max_steps):
            actions, state = agent.get_actions(obs, rl2s, tidx, state, sample=sample)
            res = env.step(actions)
            tainted |= res.nonfinite
            for i in np.flatnonzero(res.done):
                if tainted[i]:  # left out and not counted against this env's share
                    dropped += 1
                    continue
                if count[i] < per_env and len(returns) < episodes:
                    info = res.infos[i]
                    returns.append(info["episode_return"])
                    lengths.append(info["episode_length"])
                    if "success" in info:
                        successes.append(bool(info["success"]))
                count[i] += 1
            if res.done.any():
                tainted[res.done] = res.next_nonfinite[res.done]
                agent.reset_state(state, np.flatnonzero(res.done))
            obs, rl2s, tidx = res.next_obs, res.next_rl2s, res.next_time_idxs
            if len(returns) >= episodes:
                break
    finally:
        env.close()
    if not returns:
        why = f" ({dropped} episodes dropped for NaN/inf values)" if dropped else ""
        raise RuntimeError(f"evaluation finished no episode within max_steps={max_steps}{why}")
    out = {
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "length_mean": float(np.mean(lengths)),
        "episodes": len(returns),
    }
    if successes:
        out["success_rate"] = float(np.mean(successes))
    if dropped:
        out["nonfinite_episodes"] = dropped
    return out

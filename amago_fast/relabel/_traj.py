"""Trajectory-dict plumbing shared by the relabelers: validation and rebuilding.

A trajectory (docs/data.md data contract) is a dict with obs keys -> (T+1, ...) arrays
(either at the top level or inside a nested ``"obs"`` dict), ``"rl2s"`` (T+1, 1+A)
float32, ``"time_idxs"`` (T+1,) or (T+1, 1), ``"actions"`` (T, A), ``"rews"`` (T,) or
(T, 1) and ``"dones"`` (T,) or (T, 1) bool. Relabeling never writes into these arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

GOAL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int32), np.dtype(np.int64))
_OBS_LIKE = ("rl2s", "time_idxs")  # (T+1, ...) fields outside the obs dict
_STEP_LIKE = ("actions", "rews", "dones")  # (T, ...) fields
_NOT_OBS = frozenset(_OBS_LIKE + _STEP_LIKE)


def check_batch(trajs: Any, rng_seed: Any) -> list:
    """Validate the `relabel(trajs, rng_seed)` arguments; returns trajs as a list."""
    if isinstance(trajs, Mapping) or not isinstance(trajs, Sequence):
        raise TypeError(f"trajs must be a list of trajectory dicts, got {type(trajs).__name__}")
    for i, traj in enumerate(trajs):
        if not isinstance(traj, Mapping):
            raise TypeError(f"trajs[{i}] must be a dict, got {type(traj).__name__}")
    if isinstance(rng_seed, bool) or not isinstance(rng_seed, (int, np.integer)):
        raise TypeError(f"rng_seed must be an int, got {type(rng_seed).__name__}")
    if rng_seed < 0:
        raise ValueError(f"rng_seed must be >= 0, got {rng_seed}")
    return list(trajs)


def obs_container(traj: Mapping) -> Mapping:
    """The mapping that holds the observation keys: traj["obs"] if nested, else traj."""
    nested = traj.get("obs")
    if type(nested) is dict:  # the common case, without an ABC isinstance check
        return nested
    return nested if isinstance(nested, Mapping) else traj


def _field(traj: Mapping, name: str, where: str) -> np.ndarray:
    if name not in traj:
        raise ValueError(f"{where} has no {name!r} field")
    value = traj[name]
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{where}[{name!r}] must be a numpy array, got {type(value).__name__}")
    return value


def step_fields(traj: Mapping, i: int, goal_key: str, achieved_key: str) -> dict:
    """Checked, C-contiguous views of the fields a relabel kernel reads (no copies if
    the stored arrays are already contiguous). Returns goals, achieved (T+1, d), rl2s,
    dones (T,) and T."""
    where = f"trajs[{i}]"
    obs = obs_container(traj)
    goals = _field(obs, goal_key, where + " observations (goal_key)")
    achieved = _field(obs, achieved_key, where + " observations (achieved_key)")
    rl2s = _field(traj, "rl2s", where)
    dones = _field(traj, "dones", where)
    rews = _field(traj, "rews", where)
    if goals.ndim < 1 or goals.shape[0] < 1:
        raise ValueError(f"{where}[{goal_key!r}] must have shape (T+1, ...), got {goals.shape}")
    T = goals.shape[0] - 1
    if goals.dtype not in GOAL_DTYPES:
        raise TypeError(
            f"{where}[{goal_key!r}] has dtype {goals.dtype}; goal_key arrays must be one of "
            f"{', '.join(str(d) for d in GOAL_DTYPES)} (native byte order)"
        )
    if achieved.dtype != goals.dtype:
        raise TypeError(
            f"{where}[{achieved_key!r}] has dtype {achieved.dtype}, but achieved_key must "
            f"have the dtype of goal_key ({goals.dtype})"
        )
    if achieved.shape[:1] != (T + 1,):
        raise ValueError(f"{where}[{achieved_key!r}] must have T+1={T + 1} rows, got {achieved.shape}")
    if rl2s.dtype != np.float32 or rl2s.ndim != 2 or rl2s.shape[0] != T + 1:
        raise ValueError(f"{where}['rl2s'] must be float32 of shape (T+1={T + 1}, 1+A), got {rl2s.dtype} {rl2s.shape}")
    if dones.dtype != np.bool_:
        raise TypeError(f"{where}['dones'] must be bool, got {dones.dtype}")
    if dones.size != T or dones.shape[:1] != (T,):
        raise ValueError(f"{where}['dones'] must have T={T} rows, got {dones.shape}")
    if rews.shape[:1] != (T,):
        raise ValueError(f"{where}['rews'] must have T={T} rows, got {rews.shape}")
    return {
        "goals": np.ascontiguousarray(goals),
        "achieved": np.ascontiguousarray(achieved).reshape(T + 1, -1),  # (T+1, d)
        "rl2s": np.ascontiguousarray(rl2s),
        "dones": np.ascontiguousarray(dones).reshape(T),
        "T": T,
    }


def rebuild(traj: Mapping, new_len: int, goal_key: str, result: tuple) -> dict:
    """A new trajectory dict of `new_len` transitions: the kernel's new arrays for goals,
    rews, dones and rl2s; every other field a view of the original cut to length."""
    new_goals, rews, dones, rl2s, _ = result
    out = dict(traj)
    obs = obs_container(traj)
    flat = obs is traj
    new_obs = {
        k: v[: new_len + 1] if isinstance(v, np.ndarray) and not (flat and k in _NOT_OBS) else v for k, v in obs.items()
    }
    goal_shape = obs[goal_key].shape[1:]
    new_obs[goal_key] = (
        new_goals if new_goals.shape[1:] == goal_shape else new_goals.reshape((new_len + 1,) + goal_shape)
    )
    if flat:
        out.update(new_obs)
    else:
        out["obs"] = new_obs
    if "time_idxs" in traj:
        out["time_idxs"] = traj["time_idxs"][: new_len + 1]
    if "actions" in traj:
        out["actions"] = traj["actions"][:new_len]
    out["rl2s"] = rl2s
    old_rews, old_dones = traj["rews"], traj["dones"]
    out["rews"] = (
        rews
        if old_rews.ndim == 1 and old_rews.dtype == rews.dtype
        else rews.reshape((new_len,) + old_rews.shape[1:]).astype(old_rews.dtype, copy=False)
    )
    out["dones"] = dones if old_dones.ndim == 1 else dones.reshape((new_len,) + old_dones.shape[1:])
    return out


def check_batch_shares(fields: list, goal_dims: set) -> None:
    """One kernel call needs one goal_dim, goal dtype and rl2s width across the batch."""
    if len(goal_dims) > 1:
        raise ValueError(f"all trajectories must share one goal_dim, got {sorted(goal_dims)}")
    dtypes = {f["goals"].dtype for f in fields}
    if len(dtypes) > 1:
        raise TypeError(f"all trajectories must share one goal dtype, got {sorted(map(str, dtypes))}")
    cols = {f["rl2s"].shape[1] for f in fields}
    if len(cols) > 1:
        raise ValueError(f"all trajectories must share one rl2s width, got {sorted(cols)}")

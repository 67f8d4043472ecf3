"""Readers for offline datasets, each yielding trajectories in amago_fast's data contract:

    {"obs": {key: (T+1, ...)}, "rl2s": (T+1, 1+A), "time_idxs": (T+1,),
     "actions": (T, A), "rews": (T,), "dones": (T,)}

Formats, told apart by what the directory holds:
- "snapshot": an amago_fast ``ReplayBuffer.save`` directory (``manifest.json``);
- "amago": an AMAGO buffer directory (``.npz`` trajectory files, or fifo/ + protected/);
- "minari": a Minari dataset directory (``data/main_data.hdf5``, one ``episode_<i>`` group
  per episode with observations (T+1), actions, rewards, terminations, truncations). Its
  raw env values are converted with the env's gymnasium spaces (Discrete actions one-hot,
  bounded Box actions to [-1, 1], observations as the env wrapper presents them), so a
  Minari dataset needs the observation and action spaces of the env it was recorded on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

FORMATS = ("snapshot", "amago", "minari")


def detect_format(path: str | os.PathLike) -> str:
    """Which of FORMATS the directory `path` holds; ValueError naming `path` otherwise."""
    p = Path(path)
    if not p.is_dir():
        raise ValueError(f"path={str(path)!r}: no such directory (offline data is a directory)")
    if (p / "manifest.json").is_file():
        return "snapshot"
    if (p / "data" / "main_data.hdf5").is_file() or (p / "main_data.hdf5").is_file():
        return "minari"
    has_npz = any(p.glob("*.npz")) or any(p.glob("*/*.npz")) or any(p.glob("buffer/*/*.npz"))
    if has_npz:
        return "amago"
    raise ValueError(
        f"path={str(path)!r} is not an offline dataset: expected an amago_fast snapshot "
        "(manifest.json), an AMAGO buffer (.npz files) or a Minari dataset (data/main_data.hdf5)"
    )


def _from_buffer(buf) -> Iterator[dict]:
    for tid in buf.trajectory_ids():
        t = buf.trajectory(int(tid))
        yield {k: t[k] for k in ("obs", "rl2s", "time_idxs", "actions", "rews", "dones")}


def _minari_actions(actions: np.ndarray, space) -> np.ndarray:
    from gymnasium import spaces

    a = np.asarray(actions)
    if isinstance(space, spaces.Discrete):
        idx = a.reshape(len(a)).astype(np.int64) - int(space.start)
        if idx.size and (idx.min() < 0 or idx.max() >= space.n):
            raise ValueError(f"actions: Discrete index outside [0, {space.n})")
        return np.eye(int(space.n), dtype=np.float32)[idx]
    if isinstance(space, spaces.Box):
        flat = a.reshape(len(a), -1).astype(np.float64)
        low, high = space.low.reshape(-1).astype(np.float64), space.high.reshape(-1).astype(np.float64)
        if np.all(np.isfinite(low)) and np.all(np.isfinite(high)):
            flat = 2.0 * (flat - low) / (high - low) - 1.0  # the wrapper's [-1, 1] action scale
        return np.clip(flat, -1.0, 1.0).astype(np.float32)
    if isinstance(space, spaces.MultiBinary):
        return a.reshape(len(a), -1).astype(np.float32)
    raise TypeError(f"action_space: unsupported {type(space).__name__}")


def _read_h5(node) -> Any:
    """An h5py dataset -> array; a group (Dict observation) -> {key: array}."""
    import h5py

    if isinstance(node, h5py.Group):
        return {k: _read_h5(node[k]) for k in node.keys()}
    return node[()]


def _flat_obs(x: np.ndarray, box, n: int) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 1 and box.shape not in ((), (1,)) and x.dtype.kind in "iu":  # a Discrete index
        return np.eye(box.shape[0], dtype=box.dtype)[x.astype(np.int64)]
    return x.reshape(n, *box.shape).astype(box.dtype)


def _minari_obs(raw: Any, space, n: int) -> dict:
    """raw Minari observations (T+1, ...) -> {key: (T+1, ...)}. `space` is either the env's
    own observation space or the env wrapper's flat Dict-of-Box space (what a Trainer has)."""
    from gymnasium import spaces

    from ..envs.spaces import to_dict_obs

    if isinstance(space, spaces.Dict) and all(isinstance(s, spaces.Box) for s in space.spaces.values()):
        if isinstance(raw, dict):
            return {k: _flat_obs(raw[k], b, n) for k, b in space.spaces.items()}
        if len(space.spaces) == 1:
            ((k, b),) = space.spaces.items()
            return {k: _flat_obs(raw, b, n)}
    if isinstance(raw, dict):
        steps = [to_dict_obs(space, {k: v[t] for k, v in raw.items()}) for t in range(n)]
    else:
        steps = [to_dict_obs(space, raw[t]) for t in range(n)]
    return {k: np.stack([s[k] for s in steps]) for k in steps[0]}


def _minari_episodes(path: Path, observation_space, action_space) -> Iterator[dict]:
    try:
        import h5py
    except ImportError as e:
        raise ImportError("reading Minari datasets needs h5py: pip install 'amago_fast[offline]'") from e
    if observation_space is None or action_space is None:
        raise ValueError("a Minari dataset needs observation_space and action_space (the env it was recorded on)")
    f = path / "data" / "main_data.hdf5"
    f = f if f.is_file() else path / "main_data.hdf5"
    with h5py.File(f, "r") as h5:
        names = sorted((k for k in h5.keys() if k.startswith("episode_")), key=lambda k: int(k.split("_")[1]))
        if not names:
            raise ValueError(f"path={str(path)!r}: the Minari file holds no episode_<i> groups")
        for name in names:
            ep = h5[name]
            missing = [k for k in ("observations", "actions", "rewards", "terminations") if k not in ep]
            if missing:
                raise ValueError(f"{f}:{name}: missing {missing}")
            acts = _minari_actions(ep["actions"][()], action_space)
            T = len(acts)
            if T < 1:
                continue
            rews = np.asarray(ep["rewards"][()], np.float32).reshape(T)
            dones = np.asarray(ep["terminations"][()], bool).reshape(T)
            obs = _minari_obs(_read_h5(ep["observations"]), observation_space, T + 1)
            rl2s = np.zeros((T + 1, 1 + acts.shape[1]), np.float32)
            rl2s[1:, 0], rl2s[1:, 1:] = rews, acts
            yield {
                "obs": obs,
                "rl2s": rl2s,
                "time_idxs": np.arange(T + 1, dtype=np.int64),
                "actions": acts,
                "rews": rews,
                "dones": dones,
            }


def iter_offline_trajectories(path: str | os.PathLike, observation_space=None, action_space=None) -> Iterator[dict]:
    """Every trajectory of the dataset at `path` (see the module doc for the formats)."""
    fmt = detect_format(path)
    if fmt == "snapshot":
        from ..replay import ReplayBuffer

        yield from _from_buffer(ReplayBuffer.load(path))
    elif fmt == "amago":
        from ..replay.amago_import import import_amago

        yield from _from_buffer(import_amago(path))
    else:
        yield from _minari_episodes(Path(path), observation_space, action_space)


def trajectory_fields(t: dict) -> tuple[dict, int]:
    """({obs_key: (shape, dtype)}, A) of one trajectory: the ReplayBuffer field spec."""
    return {k: (tuple(v.shape[1:]), np.dtype(v.dtype)) for k, v in t["obs"].items()}, int(t["actions"].shape[1])


def load_offline_buffer(
    path: str | os.PathLike, observation_space=None, action_space=None, capacity: int = 1, seed: int = 0, **kwargs: Any
):
    """A ReplayBuffer holding the whole dataset in its protected partition (never evicted),
    with `capacity` transitions of FIFO room for online data (offline-to-online)."""
    from ..replay import ReplayBuffer

    trajs = list(iter_offline_trajectories(path, observation_space, action_space))
    if not trajs:
        raise ValueError(f"path={str(path)!r}: the dataset holds no trajectories")
    fields, A = trajectory_fields(trajs[0])
    total = sum(len(t["actions"]) for t in trajs)
    longest = max(len(t["actions"]) for t in trajs)
    # each trajectory takes T + 1 arena rows (its final observation): room for all of them
    buf = ReplayBuffer(
        fields, A, capacity=max(int(capacity), longest), protected_capacity=total + len(trajs), seed=seed, **kwargs
    )
    for t in trajs:
        buf.add_trajectory(t["obs"], t["rl2s"], t["time_idxs"], t["actions"], t["rews"], t["dones"], protected=True)
    return buf

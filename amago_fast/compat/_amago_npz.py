"""Read the .npz trajectory files AMAGO's actors write (no pickle)."""
from __future__ import annotations

import os
from typing import Any, Dict, Tuple

import numpy as np

OBS_PREFIX = "_OBS_KEY_"
_REQUIRED = ("rl2s", "time_idxs", "rews", "dones", "actions")


def load_amago_npz(path: str) -> Dict[str, Any]:
    """One AMAGO trajectory file -> arrays in amago_fast's add_trajectory layout.

    File: ``_OBS_KEY_<key>`` (T+1, ...), ``rl2s`` (T+1, 1+A), ``time_idxs`` (T+1, 1),
    ``rews`` (T, 1), ``dones`` (T, 1), ``actions`` (T, A).
    Returns ``obs`` {key: (T+1, ...)}, ``rl2s`` (T+1, 1+A) float32, ``time_idxs`` (T+1,)
    int64, ``actions`` (T, A) float32, ``rews`` (T,) float32, ``dones`` (T,) bool.
    Raises ValueError (naming the file) for missing keys or inconsistent lengths.
    """
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    missing = [k for k in _REQUIRED if k not in data]
    obs = {k[len(OBS_PREFIX):]: v for k, v in data.items() if k.startswith(OBS_PREFIX)}
    if missing or not obs:
        raise ValueError(f"{path}: not an AMAGO trajectory file (missing {missing or 'observations'})")
    actions = np.asarray(data["actions"], np.float32)
    T = actions.shape[0]
    if actions.ndim != 2 or T < 1:
        raise ValueError(f"{path}: actions must be (T>=1, A), got {actions.shape}")
    out = {
        "obs": obs,
        "rl2s": np.asarray(data["rl2s"], np.float32),
        "time_idxs": np.asarray(data["time_idxs"]).reshape(-1).astype(np.int64),
        "actions": actions,
        "rews": np.asarray(data["rews"], np.float32).reshape(-1),
        "dones": np.asarray(data["dones"]).reshape(-1).astype(bool),
    }
    for name, want in (("rl2s", T + 1), ("time_idxs", T + 1), ("rews", T), ("dones", T)):
        if out[name].shape[0] != want:
            raise ValueError(f"{path}: {name} has {out[name].shape[0]} rows, expected {want} (T={T})")
    for k, v in obs.items():
        if v.shape[0] != T + 1:
            raise ValueError(f"{path}: observation {k!r} has {v.shape[0]} rows, expected {T + 1}")
    return out


def npz_sort_key(path: str) -> Tuple[float, str]:
    """Write order of an AMAGO file: the unix time ending its name (``<env>_<id>_<time>.npz``),
    else its modification time. Ties break by name so the order is deterministic."""
    stem = os.path.splitext(os.path.basename(path))[0]
    try:
        t = float(stem.rsplit("_", 1)[1])
    except (IndexError, ValueError):
        t = os.path.getmtime(path)
    return (t, stem)

"""AMAGO's .npz trajectory files for the AMAGO dataset adapter: the one reader of the
package (`amago_fast.replay.amago_import.read_trajectory`, no pickle), with its arrays
checked and put in amago_fast's add_trajectory layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np

from ..replay.amago_import import read_trajectory, trajectory_time_key


def load_amago_npz(path: str) -> Dict[str, Any]:
    """One AMAGO trajectory file -> arrays in amago_fast's add_trajectory layout.

    File: ``_OBS_KEY_<key>`` (T+1, ...), ``rl2s`` (T+1, 1+A), ``time_idxs`` (T+1, 1),
    ``rews`` (T, 1), ``dones`` (T, 1), ``actions`` (T, A).
    Returns ``obs`` {key: (T+1, ...)}, ``rl2s`` (T+1, 1+A) float32, ``time_idxs`` (T+1,)
    int64, ``actions`` (T, A) float32, ``rews`` (T,) float32, ``dones`` (T,) bool.
    Raises ValueError (naming the file) for unreadable files, missing keys or inconsistent lengths.
    """
    p = Path(path)
    if p.suffix != ".npz":
        raise ValueError(f"{path}: not an AMAGO .npz trajectory file")
    raw = read_trajectory(p)
    actions = np.asarray(raw["actions"], np.float32)
    T = actions.shape[0]
    if actions.ndim != 2 or T < 1:
        raise ValueError(f"{path}: actions must be (T>=1, A), got {actions.shape}")
    out = {
        "obs": raw["obs"],
        "rl2s": np.asarray(raw["rl2s"], np.float32),
        "time_idxs": np.asarray(raw["time_idxs"]).reshape(-1).astype(np.int64),
        "actions": actions,
        "rews": np.asarray(raw["rews"], np.float32).reshape(-1),
        "dones": np.asarray(raw["dones"]).reshape(-1).astype(bool),
    }
    for name, want in (("rl2s", T + 1), ("time_idxs", T + 1), ("rews", T), ("dones", T)):
        if out[name].shape[0] != want:
            raise ValueError(f"{path}: {name} has {out[name].shape[0]} rows, expected {want} (T={T})")
    for k, v in out["obs"].items():
        if v.shape[0] != T + 1:
            raise ValueError(f"{path}: observation {k!r} has {v.shape[0]} rows, expected {T + 1}")
    return out


def npz_sort_key(path: str) -> Tuple[float, str]:
    """Write order of an AMAGO file (see `trajectory_time_key`)."""
    return trajectory_time_key(Path(path))

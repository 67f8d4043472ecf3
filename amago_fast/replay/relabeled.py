"""Windows cut from trajectory dicts that are not in the store (relabeled copies).

``ReplayBuffer.sample`` with a relabeler hands the relabeler zero-copy views of the
chosen trajectories (built in one native call), then cuts the relabeled dicts with the
native window cut (``_C.ReplayStore.cut_into``: starts drawn from the buffer's generator,
multi-threaded gather with the GIL released). The native side accepts only an exact
match (dict of C-contiguous arrays of the stored dtypes and shapes) and reports the
others by index; those are validated and converted here, where errors name the
argument, and the cut is retried once.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .spec import OBS_PREFIX, to_numpy

_KEYS = ("obs", "rl2s", "time_idxs", "actions", "rews", "dones")


def canonical(buf: Any, traj: Any, i: int) -> dict:
    """trajs[i] checked like ``add_trajectory`` and converted to the exact layout the
    native cut takes (casts within a kind, drops a trailing unit axis); raises
    TypeError/ValueError naming ``trajs[i].<field>`` otherwise."""
    where = f"trajs[{i}]"
    if not isinstance(traj, Mapping):
        raise TypeError(f"{where} must be a trajectory dict, got {type(traj).__name__}")
    for k in _KEYS:
        if k not in traj:
            raise ValueError(f"{where} has no {k!r} field")
    a = to_numpy(traj["actions"], f"{where}.actions")
    if a.ndim < 1 or a.shape[0] < 1:
        raise ValueError(f"{where}.actions: a trajectory needs at least one transition, got shape {a.shape}")
    arrays = buf.check_trajectory(
        traj["obs"],
        traj["rl2s"],
        traj["time_idxs"],
        traj["actions"],
        traj["rews"],
        traj["dones"],
        int(a.shape[0]),
        where + ".",
    )
    out: dict = {"obs": {}}
    for f, x in zip(buf.fields, arrays):
        if f.name.startswith(OBS_PREFIX):
            out["obs"][f.name[len(OBS_PREFIX) :]] = x
        else:
            out[f.name] = x
    return out


def cut_into(
    buf: Any,
    trajs: Sequence,
    L: int,
    mode: str,
    traj_ids: np.ndarray,
    outs: list,
    aux: tuple,
    raw_starts: np.ndarray | None = None,
) -> None:
    """Cut one window per trajectory dict into preallocated outputs (``_alloc`` layout);
    traj_ids (B,) int64 is copied to the batch. Starts are drawn by the buffer's rules
    unless raw_starts (B,) is given."""
    trajs = list(trajs)
    bad = buf.store.cut_into(trajs, L, mode, traj_ids, raw_starts, outs, *aux, buf.num_threads)
    if not bad:
        return
    for i in bad:  # convert (or reject, naming the field) only what C++ did not take
        trajs[i] = canonical(buf, trajs[i], i)
    if buf.store.cut_into(trajs, L, mode, traj_ids, raw_starts, outs, *aux, buf.num_threads):
        raise RuntimeError("native window cut rejected a checked trajectory (a bug: please report)")

"""TorchRL interop: Batch <-> TensorDict, and TorchRL's SliceSampler windows from our buffer.

tensordict/torchrl are imported inside the functions that need them, never at import time.

Two TensorDict layouts of a Batch of B windows of L transitions:

- ``"amago"`` (batch_size [B]): the Batch fields as they are, obs under ``"obs"``:
  ``obs/<key>`` (B, L+1, ...), ``rl2s`` (B, L+1, 1+A), ``time_idxs`` (B, L+1, 1),
  ``actions`` (B, L, A), ``rews`` (B, L, 1), ``dones`` (B, L, 1), ``mask`` (B, L+1),
  ``traj_ids`` (B,), ``starts`` (B,).
- ``"torchrl"`` (batch_size [B, L]): TorchRL's step convention, one entry per transition:
  ``<key>`` / ``("next", <key>)`` = obs[:, :-1] / obs[:, 1:]; ``action``;
  ``("next", "reward")``; ``("next", "done")`` and ``("next", "terminated")`` = dones;
  ``rl2s``, ``time_idxs``, ``mask`` at t and under ``"next"`` at t+1
  (a transition is real where ``("next", "mask")`` is True); ``("collector", "traj_ids")``.

Both convert back to the identical Batch (``tensordict_to_batch``); both share memory
with the Batch (no copies).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

import numpy as np
import torch

__all__ = [
    "batch_to_tensordict",
    "tensordict_to_batch",
    "trajectory_to_tensordict",
    "SliceWindowSampler",
]

_RESERVED = {"action", "next", "rl2s", "time_idxs", "mask", "collector", "reward", "done", "terminated"}
_LAYOUTS = ("amago", "torchrl")


def _tensordict_cls():
    try:
        from tensordict import TensorDict
    except ImportError as exc:  # pragma: no cover - exercised only without tensordict
        raise ImportError("TorchRL interop needs the `tensordict` package: pip install 'amago_fast[peers]'") from exc
    return TensorDict


def batch_to_tensordict(batch: Any, layout: str = "amago") -> Any:
    """Wrap an ``amago_fast.Batch`` as a ``tensordict.TensorDict`` (no copy).

    Args:
        batch: a Batch of B windows of L transitions (see the module docstring for shapes).
        layout: ``"amago"`` (batch_size [B]) or ``"torchrl"`` (batch_size [B, L]).
    """
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
    TensorDict = _tensordict_cls()
    B, L = batch.actions.shape[:2]
    if layout == "amago":
        fields = {
            "obs": dict(batch.obs),
            "rl2s": batch.rl2s,
            "time_idxs": batch.time_idxs,
            "actions": batch.actions,
            "rews": batch.rews,
            "dones": batch.dones,
            "mask": batch.mask,
        }
        for extra in ("traj_ids", "starts"):
            if getattr(batch, extra, None) is not None:
                fields[extra] = getattr(batch, extra)
        return TensorDict(fields, batch_size=[B])
    bad = sorted(set(batch.obs) & _RESERVED)
    if bad:
        raise ValueError(f"batch.obs keys {bad} collide with TorchRL layout keys; use layout='amago'")
    now: Dict[str, Any] = {k: v[:, :-1] for k, v in batch.obs.items()}
    nxt: Dict[str, Any] = {k: v[:, 1:] for k, v in batch.obs.items()}
    for name in ("rl2s", "time_idxs", "mask"):
        value = getattr(batch, name)
        now[name], nxt[name] = value[:, :-1], value[:, 1:]
    nxt["reward"] = batch.rews
    nxt["done"] = batch.dones
    nxt["terminated"] = batch.dones
    now["action"] = batch.actions
    now["next"] = nxt
    traj_ids = getattr(batch, "traj_ids", None)
    if traj_ids is not None:
        now["collector"] = {"traj_ids": traj_ids[:, None].expand(B, L)}
    starts = getattr(batch, "starts", None)
    if starts is not None:
        now["start"] = starts[:, None].expand(B, L)
    return TensorDict(now, batch_size=[B, L])


def tensordict_to_batch(td: Any) -> Any:
    """Inverse of :func:`batch_to_tensordict` for either layout (told apart by batch dims)."""
    from amago_fast import Batch

    if len(td.batch_size) == 1:
        extras = {k: td.get(k) for k in ("traj_ids", "starts") if k in td.keys()}
        obs = {k: td.get(("obs", k)) for k in td.get("obs").keys()}
        return Batch(
            obs=obs,
            rl2s=td.get("rl2s"),
            time_idxs=td.get("time_idxs"),
            actions=td.get("actions"),
            rews=td.get("rews"),
            dones=td.get("dones"),
            mask=td.get("mask"),
            **extras,
        )
    if len(td.batch_size) != 2:
        raise ValueError(f"td must have batch_size [B] or [B, L], got {list(td.batch_size)}")
    nxt = td.get("next")

    def joined(name):  # (B, L) at t + last entry of "next" -> (B, L+1)
        return torch.cat([td.get(name), nxt.get(name)[:, -1:]], dim=1)

    skip = {"action", "next", "rl2s", "time_idxs", "mask", "collector", "start"}
    obs = {k: joined(k) for k in td.keys() if k not in skip}
    extras = {}
    if "collector" in td.keys():
        extras["traj_ids"] = td.get(("collector", "traj_ids"))[:, 0]
    if "start" in td.keys():
        extras["starts"] = td.get("start")[:, 0]
    return Batch(
        obs=obs,
        rl2s=joined("rl2s"),
        time_idxs=joined("time_idxs"),
        actions=td.get("action"),
        rews=nxt.get("reward"),
        dones=nxt.get("done"),
        mask=joined("mask"),
        **extras,
    )


def trajectory_to_tensordict(traj: Mapping[str, Any], traj_id: int) -> Any:
    """One stored trajectory (T transitions, docs/data.md's arrays) as T TorchRL steps.

    ``traj`` holds ``obs`` {key: (T+1, ...)} (or ``obs/<key>`` entries), ``actions`` (T, A),
    ``rews`` (T,) or (T, 1), ``dones`` (T,) or (T, 1). Returns a TensorDict of batch_size [T]
    with ``<key>``, ``("next", <key>)``, ``action``, ``("next", "reward"|"done"|"terminated")``
    and ``("collector", "traj_ids")`` = traj_id, ready for ``torchrl`` ``ReplayBuffer.extend``.
    """
    TensorDict = _tensordict_cls()
    obs = traj["obs"] if "obs" in traj else {k[4:]: v for k, v in traj.items() if k.startswith("obs/")}
    actions = torch.as_tensor(np.asarray(traj["actions"]), dtype=torch.float32)
    T = actions.shape[0]
    rews = torch.as_tensor(np.asarray(traj["rews"]), dtype=torch.float32).reshape(T, 1)
    dones = torch.as_tensor(np.asarray(traj["dones"]), dtype=torch.bool).reshape(T, 1)
    now = {k: torch.as_tensor(np.asarray(v)[:T]) for k, v in obs.items()}
    nxt = {k: torch.as_tensor(np.asarray(v)[1 : T + 1]) for k, v in obs.items()}
    # TorchRL ends a trajectory at its last step even when it was cut (not terminal).
    done_flag = dones.clone()
    done_flag[-1] = True
    nxt.update(reward=rews, done=done_flag, terminated=dones, truncated=done_flag & ~dones)
    now.update(action=actions, next=nxt, collector={"traj_ids": torch.full((T,), int(traj_id))})
    return TensorDict(now, batch_size=[T])


class SliceWindowSampler:
    """Windows of an amago_fast ReplayBuffer drawn exactly as TorchRL's ``SliceSampler``.

    TorchRL's ``SliceSampler(slice_len=L, strict_length=...)`` (span off) picks each slice's
    trajectory uniformly among the trajectories it may use (those with >= L steps when
    ``strict_length``), then a start uniformly in [0, len - L]; with ``strict_length=False``
    a short trajectory gives its whole length. This class makes the same two draws, in the
    same order, from a ``torch.Generator`` (or torch's global RNG), over the buffer's
    trajectories in insertion order, so that with the same data in the same order and the
    same seed it returns the same windows as TorchRL. Windows come back as a Batch (short
    ones right-padded with ``mask`` False), which :func:`batch_to_tensordict` turns into
    TorchRL's layout.

    The draws are made in Python (torch RNG) and the windows cut natively by
    ``ReplayBuffer.gather``. For training throughput prefer ``ReplayBuffer.sample``:
    with padded_sampling="none" it draws from the same distribution, natively.
    """

    def __init__(
        self,
        buffer: Any,
        slice_len: int,
        strict_length: bool = True,
        generator: Optional[torch.Generator] = None,
    ):
        if not isinstance(slice_len, int) or isinstance(slice_len, bool) or slice_len < 1:
            raise ValueError(f"slice_len must be a positive int, got {slice_len!r}")
        self.buffer = buffer
        self.slice_len = slice_len
        self.strict_length = bool(strict_length)
        self.generator = generator

    def sample_index(self, num_slices: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Draw (traj_ids (N,), starts (N,), lengths (N,)) int64 for ``num_slices`` windows."""
        if not isinstance(num_slices, int) or num_slices < 1:
            raise ValueError(f"num_slices must be a positive int, got {num_slices!r}")
        tids, lengths = _live_trajectories(self.buffer)
        if tids.numel() == 0:
            raise ValueError("buffer holds no trajectories")
        L = self.slice_len
        if self.strict_length:
            keep = lengths >= L
            if not bool(keep.any()):
                raise ValueError(
                    f"no trajectory has slice_len={L} transitions (longest: {int(lengths.max())}); "
                    "use strict_length=False"
                )
            tids, lengths = tids[keep], lengths[keep]
        pick = torch.randint(tids.shape[0], (num_slices,), generator=self.generator)
        seq = lengths[pick].clamp_max(L)
        span = lengths[pick] - seq + 1
        starts = (torch.rand(num_slices, generator=self.generator) * span).floor().to(torch.int64)
        return tids[pick], starts, seq

    def sample(self, num_slices: int) -> Any:
        """A Batch of ``num_slices`` windows of ``slice_len`` transitions (see class doc)."""
        tids, starts, _ = self.sample_index(num_slices)
        # A short trajectory (strict_length=False) starts at 0 and is right-padded by gather,
        # which is TorchRL's clamp of the slice to the trajectory's length.
        return self.buffer.gather(tids.numpy(), starts.numpy(), self.slice_len)


def _live_trajectories(buffer: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(trajectory ids, lengths in transitions), in the buffer's order (oldest FIFO first)."""
    ids = [int(t) for t in buffer.trajectory_ids()]
    lengths = [int(buffer.trajectory(t)["actions"].shape[0]) for t in ids]
    return torch.tensor(ids, dtype=torch.int64), torch.tensor(lengths, dtype=torch.int64)

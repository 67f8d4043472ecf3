"""The training batch: B windows of L transitions in the docs/data.md layout.

One type for the whole package: the replay sampler returns it, the AMAGO update reads it
(``amago_fast.agent.TorchBatch`` is this class), and ``Batch.as_tensors`` builds it from
anything with its fields (numpy arrays, tensors, a dict) on a device.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Dict, Optional

import torch


@dataclass
class Batch:
    """B windows of L transitions. Padding rows are zeros; ``mask`` says which rows are real.

    Real rows always come first in a window (windows are right-padded), so
    ``mask[b].sum()`` is the number of real observation rows and ``mask[:, 1:]`` marks
    the real transitions. The per-step scalars (time_idxs, rews, dones) may also come
    without their trailing unit axis; readers reshape them to ``mask``'s (B, L+1) / (B, L).
    """

    obs: Dict[str, torch.Tensor]
    """{key: (B, L+1, ...)} observations, storage dtype."""
    rl2s: torch.Tensor
    """(B, L+1, 1+A) float32: [reward r_t, previous action a_{t-1}]."""
    time_idxs: torch.Tensor
    """(B, L+1, 1) int64: time index within the episode."""
    actions: torch.Tensor
    """(B, L, A) float32 (one-hot for Discrete)."""
    rews: torch.Tensor
    """(B, L, 1) float32."""
    dones: torch.Tensor
    """(B, L, 1) bool (terminal after the action)."""
    mask: torch.Tensor
    """(B, L+1) bool: True on real observation rows; transition validity is mask[:, 1:]."""
    traj_ids: Optional[torch.Tensor] = None
    """(B,) int64: id of the trajectory each window was cut from (debugging/tests); None
    for batches that did not come from a ReplayBuffer."""
    starts: Optional[torch.Tensor] = None
    """(B,) int64: trajectory row of window position 0 (start clipped at 0), or None."""

    @property
    def batch_size(self) -> int:
        return int(self.mask.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.mask.shape[1]) - 1

    def to(self, device, non_blocking: bool = False) -> "Batch":
        """A copy of the batch on ``device`` (non_blocking pays off from pinned memory)."""
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, dict):
                kw[f.name] = {k: t.to(device, non_blocking=non_blocking) for k, t in v.items()}
            else:
                kw[f.name] = None if v is None else v.to(device, non_blocking=non_blocking)
        return Batch(**kw)

    @classmethod
    def as_tensors(cls, batch: Any, device: Any) -> "Batch":
        """A Batch of tensors on ``device`` from any Batch, object or dict with these fields
        (numpy or torch; traj_ids / starts optional), in the dtypes above. Tensors already
        on ``device`` in the right dtype are used as they are (no copy).

        Raises ValueError when mask is not (B, L+1) or actions do not start with (B, L).
        """
        get = batch.get if isinstance(batch, dict) else (lambda k, d=None: getattr(batch, k, d))

        def t(x, dtype=None):
            x = torch.as_tensor(x)
            return x.to(device=device, dtype=dtype or x.dtype)

        ti = t(get("time_idxs"), torch.long)
        mask, actions = t(get("mask"), torch.bool), t(get("actions"), torch.float32)
        B, L1 = ti.shape[:2]
        if mask.shape != (B, L1) or actions.shape[:2] != (B, L1 - 1):
            raise ValueError(
                f"batch: mask {tuple(mask.shape)} must be (B, L+1) = {(B, L1)} and actions "
                f"{tuple(actions.shape)} must start with (B, L) = {(B, L1 - 1)}"
            )
        extras = {k: t(get(k), torch.long) for k in ("traj_ids", "starts") if get(k) is not None}
        return cls(
            obs={k: t(v) for k, v in get("obs").items()},
            rl2s=t(get("rl2s"), torch.float32),
            time_idxs=ti,
            actions=actions,
            rews=t(get("rews"), torch.float32),
            dones=t(get("dones"), torch.bool),
            mask=mask,
            **extras,
        )

    # The name TorchBatch (now this class) was built with.
    from_batch = as_tensors

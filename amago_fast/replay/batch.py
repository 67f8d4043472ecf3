"""The training batch: B windows of L transitions in the docs/data.md layout."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Dict

import torch


@dataclass
class Batch:
    """B windows of L transitions. Padding rows are zeros; ``mask`` says which rows are real.

    Real rows always come first in a window (windows are right-padded), so
    ``mask[b].sum()`` is the number of real observation rows and ``mask[:, 1:]`` marks
    the real transitions.
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
    traj_ids: torch.Tensor
    """(B,) int64: id of the trajectory each window was cut from (debugging/tests)."""
    starts: torch.Tensor
    """(B,) int64: trajectory row of window position 0 (start clipped at 0)."""

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
                kw[f.name] = v.to(device, non_blocking=non_blocking)
        return Batch(**kw)

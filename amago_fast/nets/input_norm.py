"""Moving-average input normalisation (AMAGO's InputNorm, on by default in its FFTstepEncoder)."""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn as nn

StatsReduce = Callable[[torch.Tensor], torch.Tensor]


class InputNorm(nn.Module):
    """x -> (x - mu) / sigma per feature, mu and E[x^2] tracked as bias-corrected EMAs.

    `update(x, mask)` (training forwards) folds the batch's masked mean and mean square in
    with rate beta_t = beta / (1 - (1 - beta)^t); sigma = sqrt(nu - mu^2 + 1e-5) clamped to
    [1e-3, 1e6]. Features whose sigma is still <= 0.01 (constant so far) are only centred.
    The statistics are buffers, so they are checkpointed and copied with the module.
    `stats_reduce`, if set, maps the local sums [sum x, sum x^2, count] (one vector) to the
    job-wide ones: data-parallel learners pass an all-reduce, so every rank normalises with
    the statistics of the whole batch, as one process on the concatenated batch would.
    """

    def __init__(self, dim: int, beta: float = 1e-4, init_nu: float = 1.0, stats_reduce: Optional[StatsReduce] = None):
        super().__init__()
        if not 0.0 < beta <= 1.0:
            raise ValueError(f"beta must be in (0, 1], got {beta!r}")
        self.beta, self.stats_reduce = float(beta), stats_reduce
        self.register_buffer("mu", torch.zeros(dim))
        self.register_buffer("nu", torch.full((dim,), float(init_nu)))
        self.register_buffer("t", torch.ones(1))

    @property
    def sigma(self) -> torch.Tensor:
        return torch.nan_to_num(torch.sqrt(self.nu - self.mu**2 + 1e-5)).clamp(1e-3, 1e6)

    @torch.no_grad()
    def update(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> None:
        """x (..., dim); mask (...) bool marks the rows that are data (None: all of them).
        A batch without a real row leaves the statistics as they are."""
        x = x.detach().float().reshape(-1, x.shape[-1])
        w = torch.ones(x.shape[0], 1, device=x.device) if mask is None else mask.reshape(-1, 1).float()
        d = x.shape[-1]
        xw = x * w
        sums = torch.cat([xw.sum(0), (xw * xw).sum(0), w.sum().reshape(1)])
        if self.stats_reduce is not None:
            sums = self.stats_reduce(sums)
        # no host sync on the training path: a batch without a real row gets rate 0
        total = sums[-1]
        real = (total > 0).to(sums.dtype)
        t = self.t + real
        beta_t = real * self.beta / (1.0 - (1.0 - self.beta) ** t)
        mean, square_mean = sums[:d] / total.clamp(min=1.0), sums[d : 2 * d] / total.clamp(min=1.0)
        self.t.copy_(t)
        self.mu.mul_(1.0 - beta_t).add_(beta_t * mean)
        self.nu.mul_(1.0 - beta_t).add_(beta_t * square_mean)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sigma = self.sigma
        normalized = ((x - self.mu) / sigma).clamp(-1e4, 1e4)
        use = (sigma > 0.01) & ~torch.isnan(normalized)
        return torch.where(use, normalized, x - torch.nan_to_num(self.mu))

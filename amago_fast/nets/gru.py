"""GRU trajectory encoder: the recurrent baseline AMAGO compares its Transformer with."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class GRUState:
    """Acting state: the hidden state of every env."""

    h: torch.Tensor  # (n_layers, N, d_model)

    def reset(self, env_ids) -> None:
        """Zero the hidden state of envs `env_ids` (new trajectory)."""
        self.h[:, env_ids] = 0.0


class GRUTrajEncoder(nn.Module):
    """forward(x (B, L, d_in), time_idxs (B, L)) -> (B, L, d_model); time_idxs unused
    (a recurrence already knows where it is)."""

    def __init__(self, d_in: int, d_model: int, n_layers: int, dropout: float):
        super().__init__()
        self.d_model, self.n_layers = d_model, n_layers
        self.inp = nn.Linear(d_in, d_model)
        self.gru = nn.GRU(d_model, d_model, n_layers, batch_first=True, dropout=dropout if n_layers > 1 else 0.0)
        self.norm_out = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, time_idxs: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(self.inp(x))  # (B, L, D); windows start at h=0 like AMAGO's
        return self.norm_out(out)

    def init_state(self, num_envs: int, device, dtype=torch.float32) -> GRUState:
        return GRUState(torch.zeros(self.n_layers, num_envs, self.d_model, device=device, dtype=dtype))

    def step(self, x: torch.Tensor, time_idxs: torch.Tensor, state: GRUState) -> tuple[torch.Tensor, GRUState]:
        """x: (N, d_in) -> ((N, d_model), state)."""
        out, h = self.gru(self.inp(x)[:, None], state.h)
        state.h = h
        return self.norm_out(out[:, 0]), state

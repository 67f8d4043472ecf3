"""Timestep encoder: one env step (obs dict + [prev reward, prev action]) -> one token."""

from __future__ import annotations

import math
from typing import Optional

import gymnasium as gym
import torch
import torch.nn as nn
import torch.nn.functional as F

from .input_norm import InputNorm
from .layers import MLP

STYLES = ("amago", "compact")


def _is_image(space: gym.Space) -> bool:
    return isinstance(space, gym.spaces.Box) and len(space.shape) == 3 and space.dtype == "uint8"


def _flat_dim(space: gym.Space) -> int:
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, (gym.spaces.Box, gym.spaces.MultiBinary, gym.spaces.MultiDiscrete)):
        return int(math.prod(space.shape))
    raise TypeError(f"unsupported observation space {space!r}")


class SmallCNN(nn.Module):
    """Three conv layers for (H, W, C) uint8 images (channels-last, as gymnasium gives)."""

    def __init__(self, shape: tuple[int, int, int], d_out: int):
        super().__init__()
        h, w, c = shape
        self.conv = nn.Sequential(
            nn.Conv2d(c, 32, 3, stride=2, padding=1),
            nn.LeakyReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.LeakyReLU(),
            nn.Conv2d(64, 64, 3, stride=1, padding=1),
            nn.LeakyReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            n = self.conv(torch.zeros(1, c, h, w)).shape[-1]
        self.out = nn.Linear(n, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., H, W, C) uint8 -> (..., d_out)
        lead = x.shape[:-3]
        img = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2).float() / 255.0
        return self.out(self.conv(img)).reshape(*lead, -1)


class TstepEncoder(nn.Module):
    """Concatenate flattened vector obs, CNN features of image obs and rl2s; MLP -> d_out.

    obs: {key: (B, L, ...)}, rl2s: (B, L, 1+A) -> (B, L, d_out).

    style "amago" (default, AMAGO's FFTstepEncoder): the vector features and rl2s go
    through `InputNorm` (statistics updated by training forwards, over the rows `mask`
    marks), then `n_layers` hidden Linear + LeakyReLU layers, a Linear to d_out and
    LayerNorm. style "compact" (amago_fast < 0.3): no input normalisation, the reward
    through symlog, LeakyReLU on the output before the LayerNorm.
    """

    def __init__(
        self,
        obs_space: gym.spaces.Dict,
        rl2_dim: int,
        d_hidden: int,
        d_out: int,
        cnn_dim: int = 64,
        n_layers: int = 2,
        style: str = "amago",
    ):
        super().__init__()
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {style!r}")
        if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
            raise ValueError(f"n_layers must be an int >= 1, got {n_layers!r}")
        self.style = style
        self.keys = sorted(obs_space.spaces)
        self.spaces = {k: obs_space[k] for k in self.keys}
        self.cnns = nn.ModuleDict({k: SmallCNN(s.shape, cnn_dim) for k, s in self.spaces.items() if _is_image(s)})
        d_vec = rl2_dim + sum(_flat_dim(s) for k, s in self.spaces.items() if k not in self.cnns)
        self.in_norm = InputNorm(d_vec) if style == "amago" else None
        self.mlp = MLP(d_vec + cnn_dim * len(self.cnns), d_hidden, d_out, n_hidden=n_layers)
        self.norm = nn.LayerNorm(d_out)
        self.d_out = d_out

    def forward(
        self, obs: dict[str, torch.Tensor], rl2s: torch.Tensor, mask: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """mask (B, L) bool: the real rows, for the input statistics (None: every row)."""
        lead = rl2s.shape[:-1]
        feats = {}  # key -> (B, L, features), in key order
        for k in self.keys:
            x, space = obs[k], self.spaces[k]
            if k in self.cnns:
                feats[k] = self.cnns[k](x)
            elif isinstance(space, gym.spaces.Discrete):
                feats[k] = F.one_hot(x.long().reshape(*lead), int(space.n)).float()
            else:
                feats[k] = x.reshape(*lead, -1).float()
        r = rl2s.float()
        if self.in_norm is None:  # the compact layout: every key in order, then rl2s
            r = torch.cat([torch.sign(r[..., :1]) * torch.log1p(r[..., :1].abs()), r[..., 1:]], dim=-1)
            return self.norm(F.leaky_relu(self.mlp(torch.cat(list(feats.values()) + [r], dim=-1))))
        v = torch.cat([f for k, f in feats.items() if k not in self.cnns] + [r], dim=-1)
        if self.training:
            self.in_norm.update(v, mask)
        images = [f for k, f in feats.items() if k in self.cnns]
        return self.norm(self.mlp(torch.cat([self.in_norm(v)] + images, dim=-1)))

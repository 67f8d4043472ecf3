"""Small building blocks: sigma-reparameterised linear, position embeddings, MLP."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class SigmaReparamLinear(nn.Module):
    """Linear layer with weight gamma * W / sigma(W) (Zhai et al. 2023, used by AMAGO).

    sigma(W) is the spectral norm, tracked by one power-iteration step per training
    forward (u, v are buffers, so eval forwards are deterministic and checkpoints
    resume exactly). Keeps attention logits from collapsing in long off-policy runs.
    """

    def __init__(self, d_in: int, d_out: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_out, d_in))
        nn.init.trunc_normal_(self.weight, std=0.02)
        self.bias = None
        if bias:  # nn.Linear's default init, as AMAGO's SigmaReparam (an nn.Linear) keeps it
            bound = 1.0 / math.sqrt(d_in)
            self.bias = nn.Parameter(torch.empty(d_out).uniform_(-bound, bound))
        self.gamma = nn.Parameter(torch.ones(1))
        # u, v start at W's top singular vectors (as AMAGO), so sigma(W) is exact from
        # the first forward instead of converging from random vectors over many steps
        U, _, Vh = torch.linalg.svd(self.weight.detach(), full_matrices=False)
        self.register_buffer("u", U[:, 0].clone())
        self.register_buffer("v", Vh[0].clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        with torch.autocast(w.device.type, enabled=False):  # sigma in fp32 even under bf16
            if self.training:
                with torch.no_grad():  # AMAGO's order: u from the stored v, then v from u
                    u = F.normalize(w @ self.v, dim=0)
                    v = F.normalize(w.T @ u, dim=0)
                    self.u.copy_(u)
                    self.v.copy_(v)
            sigma = torch.dot(self.u, w @ self.v)  # gradient flows through sigma, as in the paper
            w_hat = self.gamma * w / sigma
        return F.linear(x, w_hat, self.bias)


def make_linear(d_in: int, d_out: int, sigma_reparam: bool, bias: bool = True) -> nn.Module:
    return SigmaReparamLinear(d_in, d_out, bias) if sigma_reparam else nn.Linear(d_in, d_out, bias)


def sinusoidal(time_idxs: torch.Tensor, d: int) -> torch.Tensor:
    """Fixed sin/cos embedding of integer positions. time_idxs: (...,) -> (..., d)."""
    half = d // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=time_idxs.device) / half)
    ang = time_idxs.float()[..., None] * freqs  # (..., half)
    emb = torch.cat([ang.sin(), ang.cos()], dim=-1)
    return F.pad(emb, (0, d - 2 * half))


class PositionEmbedding(nn.Module):
    """Absolute position embedding of time_idxs added to tokens ("fixed" or "learned").

    "learned" has max_time rows; later time steps reuse the last row (documented clamp,
    so a longer-than-configured episode degrades gracefully rather than crashing).
    """

    def __init__(self, kind: str, d_model: int, max_time: int):
        super().__init__()
        self.kind, self.d_model, self.max_time = kind, d_model, max_time
        # nn.Embedding's own N(0, 1) init, as AMAGO's LearnablePosEmb
        self.table = nn.Embedding(max_time, d_model) if kind == "learned" else None

    def forward(self, time_idxs: torch.Tensor) -> torch.Tensor:  # (...,) -> (..., D)
        if self.kind == "fixed":
            return sinusoidal(time_idxs, self.d_model)
        if self.kind == "learned":
            return self.table(time_idxs.clamp(0, self.max_time - 1))
        raise ValueError(f"no absolute embedding for pos_emb={self.kind!r}")


def apply_rotary(x: torch.Tensor, time_idxs: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotate pairs of channels by angle pos * freq (RoPE, half-split layout).

    x: (B, L, H, Dh) with Dh even; time_idxs: (B, L) integer positions -> (B, L, H, Dh).
    """
    dh = x.shape[-1]
    half = dh // 2
    freqs = base ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    ang = time_idxs.float()[..., None, None] * freqs  # (B, L, 1, half)
    cos, sin = ang.cos(), ang.sin()
    x1, x2 = x[..., :half].float(), x[..., half:].float()
    out = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return out.to(x.dtype)


class MLP(nn.Module):
    """Linear -> LeakyReLU -> ... -> Linear with optional LayerNorm after hidden layers."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int, n_hidden: int = 2, norm: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        d = d_in
        for _ in range(n_hidden):
            layers += [nn.Linear(d, d_hidden)]
            if norm:
                layers += [nn.LayerNorm(d_hidden)]
            layers += [nn.LeakyReLU()]
            d = d_hidden
        layers += [nn.Linear(d, d_out)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

"""Causal Transformer trajectory encoder with a per-env ring-buffer KV cache.

Pre-norm blocks with NormFormer's extra norms (after attention, inside the FF) and head
scaling, sigma-reparameterised linears, leaky ReLU and dropout on the embedding and each
block's FF output, as AMAGO's TformerTrajEncoder. Positions always come from
the environment's time_idxs, never from the index inside a window, so a training
window sampled mid-trajectory and the acting cache agree on every token's position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import cache_attention, causal_attention
from .layers import PositionEmbedding, apply_rotary, make_linear


@dataclass
class KVCache:
    """Acting state: keys/values per layer for N envs, a ring buffer of W slots each."""

    k: torch.Tensor  # (n_layers, N, W, H, Dh)
    v: torch.Tensor  # (n_layers, N, W, H, Dh)
    count: torch.Tensor  # (N,) int64 tokens written since the env's last reset

    def reset(self, env_ids) -> None:
        """Forget the context of envs `env_ids` (their next token starts a new history)."""
        self.count[env_ids] = 0


class Block(nn.Module):
    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float,
        sigma_reparam: bool,
        rotary: bool,
        head_scaling: bool = True,
        qkv_bias: bool = False,
    ):
        super().__init__()
        self.n_heads, self.dh, self.rotary = n_heads, d_model // n_heads, rotary
        self.norm_attn_in = nn.LayerNorm(d_model)
        self.qkv = make_linear(d_model, 3 * d_model, sigma_reparam, bias=qkv_bias)
        # NormFormer head scaling: one learned factor per head on its attention output
        self.head_scale = nn.Parameter(torch.ones(n_heads, 1)) if head_scaling else None
        self.attn_out = make_linear(d_model, d_model, sigma_reparam)
        self.norm_attn_out = nn.LayerNorm(d_model)  # NormFormer
        self.norm_ff_in = nn.LayerNorm(d_model)
        self.ff1 = make_linear(d_model, d_ff, sigma_reparam)
        self.norm_ff_mid = nn.LayerNorm(d_ff)  # NormFormer
        self.ff2 = make_linear(d_ff, d_model, sigma_reparam)
        self.drop = nn.Dropout(dropout)

    def _qkv(self, x: torch.Tensor, time_idxs: torch.Tensor):
        B, L, _ = x.shape
        q, k, v = self.qkv(self.norm_attn_in(x)).view(B, L, 3, self.n_heads, self.dh).unbind(2)
        if self.rotary:
            q, k = apply_rotary(q, time_idxs), apply_rotary(k, time_idxs)
        return q, k, v  # each (B, L, H, Dh)

    def _finish(self, x: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        B, L = x.shape[:2]
        if self.head_scale is not None:
            attn = attn * self.head_scale.to(attn.dtype)  # (B, L, H, Dh) * (H, 1)
        x = x + self.norm_attn_out(self.attn_out(attn.reshape(B, L, -1)))
        h = self.norm_ff_mid(F.leaky_relu(self.ff1(self.norm_ff_in(x))))
        return x + self.drop(self.ff2(h))

    def forward(self, x: torch.Tensor, time_idxs: torch.Tensor, window: Optional[int]) -> torch.Tensor:
        q, k, v = self._qkv(x, time_idxs)  # (B, L, H, Dh)
        return self._finish(x, causal_attention(q, k, v, window))

    def step(self, x: torch.Tensor, time_idxs: torch.Tensor, k_cache, v_cache, count) -> torch.Tensor:
        """x: (N, 1, D); appends this token's k/v to the ring caches and attends to them."""
        q, k, v = self._qkv(x, time_idxs)  # (N, 1, H, Dh)
        dt = k_cache.dtype  # the cache's dtype wins (autocast may hand us bf16 q/k/v)
        return self._finish(x, cache_attention(q.to(dt), k_cache, v_cache, k.to(dt), v.to(dt), count))


class TransformerTrajEncoder(nn.Module):
    """Sequence of timestep embeddings -> state embeddings s_t, causal in time.

    forward(x (B, L, d_in), time_idxs (B, L)) -> (B, L, d_model). Sequences longer than
    max_seq_len use a sliding window of max_seq_len, the same view the KV cache gives.
    """

    def __init__(
        self,
        d_in: int,
        d_model: int,
        n_heads: int,
        n_layers: int,
        d_ff: int,
        dropout: float,
        pos_emb: str,
        max_seq_len: int,
        max_time: int,
        sigma_reparam: bool = True,
        head_scaling: bool = True,
        qkv_bias: bool = False,
    ):
        super().__init__()
        if d_model % n_heads or (d_model // n_heads) % 2:
            raise ValueError(f"d_model={d_model} must split into n_heads={n_heads} heads of even size")
        if pos_emb not in ("fixed", "learned", "rotary"):
            raise ValueError(f"pos_emb must be 'fixed', 'learned' or 'rotary', got {pos_emb!r}")
        self.d_model, self.n_heads, self.n_layers = d_model, n_heads, n_layers
        self.max_seq_len = max_seq_len
        self.inp = nn.Linear(d_in, d_model)
        self.pos = None if pos_emb == "rotary" else PositionEmbedding(pos_emb, d_model, max_time)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, d_ff, dropout, sigma_reparam, pos_emb == "rotary", head_scaling, qkv_bias)
            for _ in range(n_layers)
        )
        self.norm_out = nn.LayerNorm(d_model)

    def _embed(self, x: torch.Tensor, time_idxs: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        if self.pos is not None:
            h = h + self.pos(time_idxs)
        return self.drop(h)

    def forward(self, x: torch.Tensor, time_idxs: torch.Tensor) -> torch.Tensor:
        h = self._embed(x, time_idxs)  # (B, L, D)
        for blk in self.blocks:
            h = blk(h, time_idxs, self.max_seq_len)
        return self.norm_out(h)

    def init_state(self, num_envs: int, device, dtype=torch.float32) -> KVCache:
        shape = (self.n_layers, num_envs, self.max_seq_len, self.n_heads, self.d_model // self.n_heads)
        return KVCache(
            k=torch.zeros(shape, device=device, dtype=dtype),
            v=torch.zeros(shape, device=device, dtype=dtype),
            count=torch.zeros(num_envs, dtype=torch.long, device=device),
        )

    def step(self, x: torch.Tensor, time_idxs: torch.Tensor, state: KVCache) -> tuple[torch.Tensor, KVCache]:
        """One new token per env. x: (N, d_in), time_idxs: (N,) -> ((N, d_model), state).

        The ring buffer overwrites the oldest slot once an env has W = max_seq_len
        tokens: no copy, and the attended set equals forward()'s sliding window.
        """
        count = state.count.to(torch.int32)  # (N,) tokens already in each ring
        t = time_idxs[:, None]  # (N, 1)
        h = self._embed(x[:, None], t)  # (N, 1, D)
        for i, blk in enumerate(self.blocks):
            h = blk.step(h, t, state.k[i], state.v[i], count)
        state.count += 1
        return self.norm_out(h)[:, 0], state

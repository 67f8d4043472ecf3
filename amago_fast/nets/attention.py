"""Attention for the trajectory encoder, through the public `amago_fast.ops` functions.

Training calls `causal_attention` over whole windows; acting calls `cache_attention`
with one new query per env against that env's key/value cache. Both are thin calls of
`flash_attn_func` / `flash_attn_with_kvcache(..., ring=True)` (Triton on CUDA, PyTorch
on CPU); the attention math, its checks and its pure-PyTorch reference live in
`amago_fast.ops` and `amago_fast.kernels` only.

Sliding window: a query at position i attends to keys i-window+1 .. i. The KV cache is
a ring buffer of `window` slots, so a rollout longer than the window sees exactly the
same keys as `causal_attention(..., window=window)` over the full history.
"""

from __future__ import annotations

from typing import Optional

import torch

from ..ops import flash_attn_func, flash_attn_with_kvcache


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: Optional[int] = None) -> torch.Tensor:
    """Causal self-attention over a window. q, k, v: (B, L, H, Dh) -> (B, L, H, Dh).

    window: if set and < L, each query sees only the last `window` keys (itself included).
    """
    if window is not None and window >= q.shape[1]:
        window = None
    ws = (-1, -1) if window is None else (window - 1, 0)
    return flash_attn_func(q, k, v, causal=True, window_size=ws)


def cache_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    count: torch.Tensor,
) -> torch.Tensor:
    """Append one token per row to a ring-buffer cache and attend with its query.

    q, k, v: (N, 1, H, Dh) the new token; k_cache, v_cache: (N, W, H, Dh), modified in
    place; count: (N,) int32 tokens written to each row before this one (may exceed W:
    token t lives in slot t % W, so the newest overwrites the oldest, no copy). The query
    sees the most recent min(count + 1, W) tokens. Slot order does not matter: a single
    query's softmax is invariant to key order, and positions are already inside q/k
    (rotary) or the token (fixed/learned). -> (N, 1, H, Dh)
    """
    return flash_attn_with_kvcache(q, k_cache, v_cache, k=k, v=v, cache_seqlens=count, causal=True, ring=True)

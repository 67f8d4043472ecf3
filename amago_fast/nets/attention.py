"""Attention routing for the trajectory encoder.

Training calls `causal_attention` over whole windows; acting calls `cache_attention`
with one new query per env against that env's key/value cache. Both go through the
public `amago_fast.ops` functions (flash-attn signatures: Triton on CUDA, PyTorch on
CPU) when that package is importable, and otherwise through torch SDPA, so the agent
works before and without the kernels.

Sliding window: a query at position i attends to keys i-window+1 .. i. The KV cache is
a ring buffer of `window` slots, so a rollout longer than the window sees exactly the
same keys as `causal_attention(..., window=window)` over the full history.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F

_OPS: Optional[tuple[Callable, Callable]] = None
_OPS_TRIED = False


def _public_ops() -> Optional[tuple[Callable, Callable]]:
    """(flash_attn_func, flash_attn_with_kvcache) from amago_fast.ops, or None."""
    global _OPS, _OPS_TRIED
    if not _OPS_TRIED:
        _OPS_TRIED = True
        try:
            from amago_fast.ops import flash_attn_func, flash_attn_with_kvcache
        except ImportError:
            _OPS = None
        else:
            _OPS = (flash_attn_func, flash_attn_with_kvcache)
    return _OPS


def use_public_ops(enabled: bool) -> None:
    """Force (True: retry import) or forbid (False) the amago_fast.ops backend (tests)."""
    global _OPS, _OPS_TRIED
    _OPS, _OPS_TRIED = None, not enabled
    if enabled:
        _public_ops()


def backend_name() -> str:
    """'amago_fast.ops' or 'torch-sdpa': which path attention takes."""
    return "amago_fast.ops" if _public_ops() is not None else "torch-sdpa"


def band_mask(lq: int, lk: int, window: Optional[int], device) -> torch.Tensor:
    """Boolean (lq, lk) mask, True where query i (bottom-right aligned) may see key j."""
    qi = torch.arange(lq, device=device)[:, None] + (lk - lq)
    kj = torch.arange(lk, device=device)[None, :]
    ok = kj <= qi
    if window is not None:
        ok &= kj > qi - window
    return ok


def reference_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: Optional[int] = None
) -> torch.Tensor:
    """Plain softmax(QK^T/sqrt(d))V with a causal (optionally banded) mask, in fp32.

    q, k, v: (B, L, H, Dh) -> (B, L, H, Dh). The ground truth the fast paths match.
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    s = torch.einsum("blhd,bmhd->bhlm", q.float(), k.float()) * scale  # (B, H, L, L)
    s = s.masked_fill(~band_mask(q.shape[1], k.shape[1], window, q.device), float("-inf"))
    return torch.einsum("bhlm,bmhd->blhd", s.softmax(-1), v.float()).to(q.dtype)


def causal_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: Optional[int] = None
) -> torch.Tensor:
    """Causal self-attention over a window. q, k, v: (B, L, H, Dh) -> (B, L, H, Dh).

    window: if set and < L, each query sees only the last `window` keys (itself included).
    """
    L = q.shape[1]
    if window is not None and window >= L:
        window = None
    ops = _public_ops()
    if ops is not None:
        ws = (-1, -1) if window is None else (window - 1, 0)
        return ops[0](q, k, v, causal=True, window_size=ws)
    qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))  # (B, H, L, Dh)
    if window is None:
        out = F.scaled_dot_product_attention(qt, kt, vt, is_causal=True)
    else:
        out = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=band_mask(L, L, window, q.device))
    return out.transpose(1, 2)


def cache_attention(
    q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
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
    ops = _public_ops()
    if ops is not None:
        return ops[1](q, k_cache, v_cache, k=k, v=v, cache_seqlens=count, causal=True, ring=True)
    N, W = k_cache.shape[:2]
    rows = torch.arange(N, device=q.device)
    slot = count.long() % W  # (N,)
    k_cache[rows, slot] = k[:, 0].to(k_cache.dtype)
    v_cache[rows, slot] = v[:, 0].to(v_cache.dtype)
    n_valid = torch.clamp(count.long() + 1, max=W)  # (N,)
    valid = torch.arange(W, device=q.device)[None, :] < n_valid[:, None]  # (N, W)
    qt, kt, vt = q.transpose(1, 2), k_cache.transpose(1, 2), v_cache.transpose(1, 2)
    out = F.scaled_dot_product_attention(qt, kt.to(q.dtype), vt.to(q.dtype), attn_mask=valid[:, None, None, :])
    return out.transpose(1, 2)

"""Pure-PyTorch reference attention: the ground truth every kernel is tested against.

Written for clarity, not speed: it materialises the full (Lq, Lk) score matrix. The
masking rules live in one place, :func:`attention_mask`, expressed on *absolute token
positions* so that training attention, cache decode and ring-buffer decode share them:

- query ``i`` sits at absolute position ``q_pos[i]``, key slot ``j`` holds the token at
  absolute position ``k_pos[j]`` (``k_valid[j]`` False for empty slots);
- key ``j`` is visible to query ``i`` iff it is valid and
  ``q_pos - left <= k_pos <= q_pos + right`` (a bound of -1 means unbounded; ``causal``
  forces ``right = 0``), exactly flash-attn's ``window_size`` semantics;
- a query that sees no key at all outputs zeros (and receives zero gradient).
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch


def effective_window(causal: bool, window_size: Tuple[int, int]) -> Tuple[int, int]:
    """(left, right) bounds after applying ``causal`` (which sets right to 0); -1 = unbounded."""
    left, right = int(window_size[0]), int(window_size[1])
    if causal:
        right = 0
    return left, right


def attention_mask(
    q_pos: torch.Tensor,  # (B, Lq) int64 absolute query positions
    k_pos: torch.Tensor,  # (B, Lk) int64 absolute key positions
    k_valid: torch.Tensor,  # (B, Lk) bool, False for empty cache slots
    causal: bool,
    window_size: Tuple[int, int],
) -> torch.Tensor:
    """Boolean (B, Lq, Lk) mask, True where query i may attend key j."""
    left, right = effective_window(causal, window_size)
    rel = k_pos[:, None, :] - q_pos[:, :, None]  # (B, Lq, Lk) key minus query position
    allowed = k_valid[:, None, :].expand_as(rel).clone()
    if right >= 0:
        allowed &= rel <= right
    if left >= 0:
        allowed &= rel >= -left
    return allowed


def training_positions(batch: int, lq: int, lk: int, device: torch.device):
    """Positions for plain (non-cache) attention: queries aligned to the END of the keys.

    flash-attn's bottom-right convention: with Lq < Lk, query i sits at position
    i + Lk - Lq, so the last query always sees the last key under ``causal``.
    """
    q_pos = torch.arange(lq, device=device) + (lk - lq)
    k_pos = torch.arange(lk, device=device)
    return (
        q_pos.expand(batch, lq),  # (B, Lq)
        k_pos.expand(batch, lk),  # (B, Lk)
        torch.ones(batch, lk, dtype=torch.bool, device=device),
    )


def cache_positions(seqlens_k: torch.Tensor, lq: int, lmax: int, ring: bool):
    """Positions for decode over a cache after the append.

    ``seqlens_k`` (B,) is the number of tokens ever written to each row *including* the
    new ones. Queries are the last ``lq`` tokens: position ``seqlens_k - lq + i``.
    Linear cache: slot j holds token j, valid iff ``j < seqlens_k``.
    Ring cache: token t lives in slot ``t % lmax``; slot j therefore holds the most recent
    token congruent to j, ``seqlens_k - lmax + ((j - seqlens_k) mod lmax)``, valid iff >= 0.
    """
    n = seqlens_k.long()[:, None]  # (B, 1)
    q_pos = n - lq + torch.arange(lq, device=n.device)[None, :]  # (B, Lq)
    j = torch.arange(lmax, device=n.device)[None, :]  # (1, Lmax)
    if ring:
        k_pos = n - lmax + torch.remainder(j - n, lmax)  # (B, Lmax)
        k_valid = k_pos >= 0
    else:
        k_pos = j.expand(n.shape[0], lmax)
        k_valid = j < n
    return q_pos, k_pos, k_valid


def masked_attention_ref(
    q: torch.Tensor,  # (B, Lq, H, D)
    k: torch.Tensor,  # (B, Lk, H, D)
    v: torch.Tensor,  # (B, Lk, H, D)
    mask: Optional[torch.Tensor],  # (B, Lq, Lk) bool or None
    softmax_scale: Optional[float] = None,
    upcast: bool = True,
) -> torch.Tensor:
    """softmax(q k^T * scale, masked) v with zeros for rows that see no key. -> (B, Lq, H, D)

    ``upcast=True`` computes in fp32 (fp64 inputs stay fp64); ``upcast=False`` computes in
    the input dtype, which is the "low-precision reference" of the flash-attn test rule.
    """
    dtype = q.dtype
    if upcast and dtype in (torch.float16, torch.bfloat16):
        q, k, v = q.float(), k.float(), v.float()
    scale = 1.0 / math.sqrt(q.shape[-1]) if softmax_scale is None else softmax_scale
    scores = torch.einsum("bihd,bjhd->bhij", q * scale, k)  # (B, H, Lq, Lk)
    if mask is not None:
        m = mask[:, None, :, :]  # (B, 1, Lq, Lk)
        scores = scores.masked_fill(~m, float("-inf"))
        # A row with no visible key would softmax to NaN; give it zeros instead.
        empty = ~m.any(dim=-1, keepdim=True)  # (B, 1, Lq, 1)
        scores = scores.masked_fill(empty, 0.0)
        probs = torch.softmax(scores, dim=-1).masked_fill(empty, 0.0)
    else:
        probs = torch.softmax(scores, dim=-1)
    out = torch.einsum("bhij,bjhd->bihd", probs, v)
    return out.to(dtype)


def attention_ref(
    q: torch.Tensor,  # (B, Lq, H, D)
    k: torch.Tensor,  # (B, Lk, H, D)
    v: torch.Tensor,  # (B, Lk, H, D)
    causal: bool = False,
    window_size: Tuple[int, int] = (-1, -1),
    softmax_scale: Optional[float] = None,
    upcast: bool = True,
) -> torch.Tensor:
    """Reference for ``flash_attn_func`` (no dropout). -> (B, Lq, H, D)"""
    batch, lq, lk = q.shape[0], q.shape[1], k.shape[1]
    mask = attention_mask(*training_positions(batch, lq, lk, q.device), causal, window_size)
    return masked_attention_ref(q, k, v, mask, softmax_scale, upcast)


def kvcache_ref(
    q: torch.Tensor,  # (B, Lq, H, D)
    k_cache: torch.Tensor,  # (B, Lmax, H, D)
    v_cache: torch.Tensor,  # (B, Lmax, H, D)
    k: Optional[torch.Tensor] = None,  # (B, Lnew, H, D)
    v: Optional[torch.Tensor] = None,  # (B, Lnew, H, D)
    cache_seqlens: Optional[torch.Tensor] = None,  # (B,) int
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    window_size: Tuple[int, int] = (-1, -1),
    ring: bool = False,
    upcast: bool = True,
):
    """Reference for ``flash_attn_with_kvcache``; does NOT modify its inputs.

    Returns (out (B, Lq, H, D), k_cache_after, v_cache_after): the caches as they should
    look after the in-place append, written one token at a time with plain indexing.
    """
    batch, lmax = k_cache.shape[0], k_cache.shape[1]
    if cache_seqlens is None:
        seqlens = torch.full((batch,), lmax, dtype=torch.long, device=q.device)
    else:
        seqlens = cache_seqlens.long().clone()
    k_cache, v_cache = k_cache.clone(), v_cache.clone()
    lnew = 0 if k is None else k.shape[1]
    for b in range(batch):
        for t in range(lnew):
            pos = int(seqlens[b]) + t
            slot = pos % lmax if ring else pos
            k_cache[b, slot] = k[b, t]
            v_cache[b, slot] = v[b, t]
    seqlens_k = seqlens + lnew
    q_pos, k_pos, k_valid = cache_positions(seqlens_k, q.shape[1], lmax, ring)
    mask = attention_mask(q_pos, k_pos, k_valid, causal, window_size)
    out = masked_attention_ref(q, k_cache, v_cache, mask, softmax_scale, upcast)
    return out, k_cache, v_cache

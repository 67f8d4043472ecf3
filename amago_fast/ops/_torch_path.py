"""The PyTorch backend: SDPA with an explicit mask where SDPA's own flags cannot express
the rule (bottom-right causal with Lq != Lk, sliding windows, caches). Differentiable,
supports dropout, runs anywhere PyTorch does."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from .reference import attention_mask, cache_positions, effective_window, training_positions


def _poison_nan(out: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """SDPA's CPU kernels can return zeros for NaN inputs, where flash-attn and the Triton
    kernels propagate NaN: a diverged model must not keep training on silent zeros. A
    non-finite (NaN or inf) query row gives a NaN output row; a non-finite key/value
    poisons its whole (batch, head). Branch-free, so it traces under torch.compile.

    Detection sums x * 0 over the head dimension: 0 for a finite row, NaN as soon as one
    entry is NaN or inf, and no finite row can overflow into a false alarm. On the strided
    q/k/v views of a packed qkv this takes a sixth of the time `isnan().any()` took
    (`benchmarks/bench_attention.py -k nonfinite`: 0.92 vs 6.45 ms at AMAGO's shapes).
    """
    bad = _nonfinite_rows(q)  # (B, Lq, H)
    bad = bad | (_nonfinite_rows(k) | _nonfinite_rows(v)).any(1, keepdim=True)  # (B, 1, H)
    return out.masked_fill(bad[..., None], float("nan"))


def _nonfinite_rows(x: torch.Tensor) -> torch.Tensor:
    """(..., D) -> (...) bool: the row holds a NaN or an inf."""
    return (x.detach() * 0).sum(-1).isnan()


def masked_sdpa(
    q: torch.Tensor,  # (B, H, Lq, D)
    k: torch.Tensor,  # (B, H, Lk, D)
    v: torch.Tensor,  # (B, H, Lk, D)
    mask: torch.Tensor,  # (B, Lq, Lk) bool, True = attend
    dropout_p: float,
    scale: float,
) -> torch.Tensor:
    """SDPA with a boolean mask; rows that see no key give zeros, not NaN. -> (B, H, Lq, D)"""
    has_key = mask.any(dim=-1, keepdim=True)  # (B, Lq, 1)
    # Unmask empty rows so softmax stays finite, then zero them (their gradient is zero too).
    safe = (mask | ~has_key)[:, None]  # (B, 1, Lq, Lk)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=safe, dropout_p=dropout_p, scale=scale)
    return out * has_key[:, None].to(out.dtype)


def torch_attention(
    q: torch.Tensor,  # (B, Lq, H, D)
    k: torch.Tensor,  # (B, Lk, H, D)
    v: torch.Tensor,  # (B, Lk, H, D)
    dropout_p: float,
    scale: float,
    causal: bool,
    window_size: Tuple[int, int],
) -> torch.Tensor:
    """flash_attn_func semantics on the PyTorch backend. -> (B, Lq, H, D)"""
    if q.device.type == "cpu" and q.dtype == torch.bfloat16:
        # PyTorch's CPU flash-attention backward is several times slower in bf16 than in
        # fp32 (benchmarks/RESULTS.md, "bf16 on CPU"): attend in fp32, hand back bf16.
        with torch.autocast("cpu", enabled=False):  # autocast would cast SDPA back to bf16
            out = torch_attention(q.float(), k.float(), v.float(), dropout_p, scale, causal, window_size)
        return out.to(torch.bfloat16)
    batch, lq, lk = q.shape[0], q.shape[1], k.shape[1]
    left, right = effective_window(causal, window_size)
    qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))  # (B, H, L, D)
    if left < 0 and (right < 0 or (right == 0 and lq == lk)):
        # Plain or square-causal attention: SDPA's own fast paths apply.
        out = F.scaled_dot_product_attention(qt, kt, vt, dropout_p=dropout_p, is_causal=right == 0, scale=scale)
    else:
        mask = attention_mask(*training_positions(batch, lq, lk, q.device), causal, window_size)
        out = masked_sdpa(qt, kt, vt, mask, dropout_p, scale)
    return _poison_nan(out.transpose(1, 2), q, k, v)


def append_kv(
    k_cache: torch.Tensor,  # (B, Lmax, H, D), written in place
    v_cache: torch.Tensor,  # (B, Lmax, H, D), written in place
    k: Optional[torch.Tensor],  # (B, Lnew, H, D)
    v: Optional[torch.Tensor],  # (B, Lnew, H, D)
    cache_seqlens: torch.Tensor,  # (B,) int32, tokens already in each row
    ring: bool,
) -> torch.Tensor:
    """Write the new tokens at their slots (``pos`` or ``pos % Lmax``); returns (B,) lengths after."""
    if k is None:
        return cache_seqlens
    batch, lmax, lnew = k_cache.shape[0], k_cache.shape[1], k.shape[1]
    pos = cache_seqlens.long()[:, None] + torch.arange(lnew, device=k.device)  # (B, Lnew)
    slots = torch.remainder(pos, lmax) if ring else pos
    rows = torch.arange(batch, device=k.device)[:, None].expand_as(slots)
    k_cache[rows, slots] = k
    v_cache[rows, slots] = v
    return cache_seqlens + lnew


def torch_decode(
    q: torch.Tensor,  # (B, Lq, H, D)
    k_cache: torch.Tensor,  # (B, Lmax, H, D)
    v_cache: torch.Tensor,  # (B, Lmax, H, D)
    seqlens_k: torch.Tensor,  # (B,) tokens written per row, new ones included
    scale: float,
    causal: bool,
    window_size: Tuple[int, int],
    ring: bool,
) -> torch.Tensor:
    """Attention of q over the (already appended) cache. -> (B, Lq, H, D)

    Like the kernel, never lets an unwritten slot reach the arithmetic: caches are often
    initialised with NaN (AMAGO does), and a masked score still multiplies V (0 * NaN = NaN).
    Only the used prefix of the cache is read, with invalid slots zeroed.
    """
    lq, lmax = q.shape[1], k_cache.shape[1]
    used = min(lmax, int(seqlens_k.max()))  # host sync; this is the portable fallback path
    if used == 0:
        return torch.zeros_like(q)
    # Until some row wraps, a ring holds token j in slot j, exactly like a linear cache.
    q_pos, k_pos, k_valid = cache_positions(seqlens_k, lq, used, ring and used == lmax)
    mask = attention_mask(q_pos, k_pos, k_valid, causal, window_size)  # (B, Lq, used)
    keep = k_valid[:, :, None, None]  # (B, used, 1, 1)
    kc = torch.where(keep, k_cache[:, :used], 0.0)  # (B, used, H, D)
    vc = torch.where(keep, v_cache[:, :used], 0.0)
    qt, kt, vt = (x.transpose(1, 2) for x in (q, kc, vc))  # (B, H, L, D)
    return masked_sdpa(qt, kt, vt, mask, 0.0, scale).transpose(1, 2)

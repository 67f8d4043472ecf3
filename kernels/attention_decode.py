"""Decode attention over a key/value cache in Triton (flash-decoding).

The key axis of the cache is split across programs so that a handful of queries (one per
environment and head when acting) still fills the GPU: each program reduces one chunk of
key slots to a partial output and a base-2 log-sum-exp, and a second kernel merges the
chunks. A row's slots past its length are never read, so the cost follows the lengths.

Key positions (the only thing the masks need) come from the slot index: a linear cache
holds token j in slot j; a ring cache of size LMAX holds in slot j the most recent token
congruent to j modulo LMAX, i.e. position n - LMAX + ((j - n) mod LMAX), n the row length.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import triton
import triton.language as tl

from ._common import (
    LOG2E,
    _visible,
    check_interpretable,
    device_guard,
    dot_precision,
    interpreting,
    last_dim_contiguous,
    window_flags,
)


@triton.jit
def _decode_split(
    Q,
    K,
    V,
    SeqlensK,
    PartO,
    PartLse,  # PartO: (B, H, LQ, S, D) fp32; PartLse: (B, H, LQ, S)
    stride_qb,
    stride_qm,
    stride_qh,
    stride_kb,
    stride_kn,
    stride_kh,
    stride_vb,
    stride_vn,
    stride_vh,
    H,
    LQ,
    LMAX,
    CHUNK,
    NUM_SPLITS,
    qk_scale,
    win_left,
    win_right,
    HEAD_DIM: tl.constexpr,
    HAS_LEFT: tl.constexpr,
    HAS_RIGHT: tl.constexpr,
    RING: tl.constexpr,
    DOT_PREC: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    split = tl.program_id(0)
    pid_bh = tl.program_id(1)
    pid_m = tl.program_id(2)
    b = (pid_bh // H).to(tl.int64)  # int64: batch offsets of big caches overflow int32
    h = pid_bh % H
    n = tl.load(SeqlensK + b).to(tl.int32)  # tokens written to this row, new ones included
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    q = tl.load(
        Q + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qm + offs_d[None, :],
        mask=offs_m[:, None] < LQ,
        other=0.0,
    )  # (BLOCK_M, D)
    q_pos = n - LQ + offs_m  # queries are the last LQ tokens of the row

    lo = split * CHUNK
    hi = tl.minimum(lo + CHUNK, tl.minimum(n, LMAX))  # slots >= n were never written
    if not RING:
        if HAS_LEFT:  # linear cache: skip slots left of the window band entirely
            lo = tl.maximum(lo, ((n - LQ + pid_m * BLOCK_M - win_left) // BLOCK_N) * BLOCK_N)
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        kv_mask = offs_n[:, None] < hi
        k = tl.load(k_base + offs_n[:, None] * stride_kn + offs_d[None, :], mask=kv_mask, other=0.0)
        v = tl.load(v_base + offs_n[:, None] * stride_vn + offs_d[None, :], mask=kv_mask, other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision=DOT_PREC) * qk_scale  # (BLOCK_M, BLOCK_N)
        if RING:
            k_pos = n - LMAX + ((offs_n - n) % LMAX + LMAX) % LMAX
        else:
            k_pos = offs_n
        vis = _visible(q_pos[:, None], k_pos[None, :], offs_n[None, :] < hi, win_left, win_right, HAS_LEFT, HAS_RIGHT)
        s = tl.where(vis, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.math.exp2(s - m_safe[:, None])
        alpha = tl.math.exp2(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=DOT_PREC)
        m_i = m_new

    has_key = l_i > 0.0
    acc = acc / tl.where(has_key, l_i, 1.0)[:, None]
    lse = tl.where(has_key, m_i + tl.math.log2(tl.where(has_key, l_i, 1.0)), float("-inf"))
    row = (pid_bh * LQ + offs_m) * NUM_SPLITS + split  # index into (B, H, LQ, S)
    row_mask = offs_m < LQ
    tl.store(PartLse + row, lse, mask=row_mask)
    tl.store(PartO + row[:, None] * HEAD_DIM + offs_d[None, :], acc, mask=row_mask[:, None])


@triton.jit
def _decode_combine(
    PartO,
    PartLse,
    Out,
    stride_ob,
    stride_om,
    stride_oh,
    H,
    LQ,
    NUM_SPLITS,
    HEAD_DIM: tl.constexpr,
    BLOCK_S: tl.constexpr,
):
    """Merge the per-chunk results of one (batch, head, query): weights 2^(lse_s - max)."""
    pid_bh = tl.program_id(0)
    m = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)  # int64: batch offsets of big caches overflow int32
    h = pid_bh % H
    offs_s = tl.arange(0, BLOCK_S)
    offs_d = tl.arange(0, HEAD_DIM)
    row = (pid_bh * LQ + m) * NUM_SPLITS
    lse = tl.load(PartLse + row + offs_s, mask=offs_s < NUM_SPLITS, other=float("-inf"))
    m_max = tl.max(lse, 0)
    m_safe = tl.where(m_max == float("-inf"), 0.0, m_max)
    w = tl.math.exp2(lse - m_safe)  # (BLOCK_S,), 0 for empty chunks
    o = tl.load(
        PartO + (row + offs_s[:, None]) * HEAD_DIM + offs_d[None, :], mask=offs_s[:, None] < NUM_SPLITS, other=0.0
    )
    total = tl.sum(w, 0)
    out = tl.sum(o * w[:, None], 0) / tl.where(total > 0.0, total, 1.0)  # zeros if nothing seen
    tl.store(Out + b * stride_ob + h * stride_oh + m * stride_om + offs_d, out.to(Out.dtype.element_ty))


@triton.jit
def _append_kv(
    KNew,
    VNew,
    KCache,
    VCache,
    SeqlensOld,  # new tokens (B, LNEW, H, D) -> caches (B, LMAX, H, D)
    stride_nb,
    stride_nm,
    stride_nh,
    stride_wb,
    stride_wm,
    stride_wh,
    stride_kb,
    stride_kn,
    stride_kh,
    stride_vb,
    stride_vn,
    stride_vh,
    H,
    LMAX,
    RING: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_H: tl.constexpr,
):
    """One program per (row, new token): write its H x D keys and values at their slot."""
    b = tl.program_id(0).to(tl.int64)
    t = tl.program_id(1)
    pos = tl.load(SeqlensOld + b).to(tl.int32) + t
    slot = pos % LMAX if RING else pos
    offs_h = tl.arange(0, BLOCK_H)
    offs_d = tl.arange(0, HEAD_DIM)
    mask = offs_h[:, None] < H
    k = tl.load(KNew + b * stride_nb + t * stride_nm + offs_h[:, None] * stride_nh + offs_d[None, :], mask=mask)
    v = tl.load(VNew + b * stride_wb + t * stride_wm + offs_h[:, None] * stride_wh + offs_d[None, :], mask=mask)
    tl.store(KCache + b * stride_kb + slot * stride_kn + offs_h[:, None] * stride_kh + offs_d[None, :], k, mask=mask)
    tl.store(VCache + b * stride_vb + slot * stride_vn + offs_h[:, None] * stride_vh + offs_d[None, :], v, mask=mask)


def append_kv(
    k: torch.Tensor,  # (B, Lnew, H, D)
    v: torch.Tensor,  # (B, Lnew, H, D)
    k_cache: torch.Tensor,  # (B, Lmax, H, D), written in place
    v_cache: torch.Tensor,  # (B, Lmax, H, D), written in place
    seqlens_old: torch.Tensor,  # (B,) int32 tokens already in each row
    ring: bool,
) -> None:
    """Write new tokens at slot ``pos`` (``pos % Lmax`` for a ring) in one launch."""
    check_interpretable(k)
    k, v = last_dim_contiguous(k), last_dim_contiguous(v)
    batch, lnew, heads, dim = k.shape
    with device_guard(k):
        _append_kv[(batch, lnew)](
            k,
            v,
            k_cache,
            v_cache,
            seqlens_old,
            k.stride(0),
            k.stride(1),
            k.stride(2),
            v.stride(0),
            v.stride(1),
            v.stride(2),
            k_cache.stride(0),
            k_cache.stride(1),
            k_cache.stride(2),
            v_cache.stride(0),
            v_cache.stride(1),
            v_cache.stride(2),
            heads,
            k_cache.shape[1],
            RING=ring,
            HEAD_DIM=dim,
            BLOCK_H=max(2, triton.next_power_of_2(heads)),
        )


def _num_splits(device: torch.device, programs: int, lmax: int, block_n: int) -> int:
    """Enough key chunks for ~4 programs per SM (bandwidth wants many loads in flight),
    never a chunk smaller than one block. A heuristic, to be tuned on a GPU."""
    if device.type == "cuda":
        sms = torch.cuda.get_device_properties(device).multi_processor_count
    else:
        sms = 4  # interpreter: still exercise several splits
    want = max(1, -(-4 * sms // programs))
    return max(1, min(want, triton.cdiv(lmax, block_n), 128))


def attention_decode(
    q: torch.Tensor,  # (B, Lq, H, D)
    k_cache: torch.Tensor,  # (B, Lmax, H, D)
    v_cache: torch.Tensor,  # (B, Lmax, H, D)
    seqlens_k: torch.Tensor,  # (B,) int32: tokens written per row, new ones included
    scale: float,
    causal: bool,
    window: Tuple[int, int],
    ring: bool,
    num_splits: Optional[int] = None,
) -> torch.Tensor:
    """Launch split-key decode + combine. -> out (B, Lq, H, D) contiguous."""
    check_interpretable(q)
    q = last_dim_contiguous(q)
    batch, lq, heads, dim = q.shape
    lmax = k_cache.shape[1]
    block_m = 16 if lq <= 16 else 32  # tl.dot needs >= 16 rows; Lq is 1 when acting
    block_n = 32 if interpreting() else (64 if dim <= 64 else 32)
    m_blocks = triton.cdiv(lq, block_m)
    splits = num_splits or _num_splits(q.device, batch * heads * m_blocks, lmax, block_n)
    chunk = triton.cdiv(triton.cdiv(lmax, splits), block_n) * block_n
    splits = triton.cdiv(lmax, chunk)
    part_o = torch.empty((batch, heads, lq, splits, dim), dtype=torch.float32, device=q.device)
    part_lse = torch.empty((batch, heads, lq, splits), dtype=torch.float32, device=q.device)
    out = torch.empty((batch, lq, heads, dim), dtype=q.dtype, device=q.device)
    left, right, has_left, has_right = window_flags(causal, window)
    with device_guard(q):
        _decode_split[(splits, batch * heads, m_blocks)](
            q,
            k_cache,
            v_cache,
            seqlens_k,
            part_o,
            part_lse,
            q.stride(0),
            q.stride(1),
            q.stride(2),
            k_cache.stride(0),
            k_cache.stride(1),
            k_cache.stride(2),
            v_cache.stride(0),
            v_cache.stride(1),
            v_cache.stride(2),
            heads,
            lq,
            lmax,
            chunk,
            splits,
            scale * LOG2E,
            left,
            right,
            HEAD_DIM=dim,
            HAS_LEFT=has_left,
            HAS_RIGHT=has_right,
            RING=ring,
            DOT_PREC=dot_precision(q.dtype),
            BLOCK_M=block_m,
            BLOCK_N=block_n,
            num_warps=8 if q.dtype == torch.float32 else 4,  # fp32 FMA dots spill with 4 warps at D=128
            num_stages=1 if interpreting() else 3,
        )
        _decode_combine[(batch * heads, lq)](
            part_o,
            part_lse,
            out,
            out.stride(0),
            out.stride(1),
            out.stride(2),
            heads,
            lq,
            splits,
            HEAD_DIM=dim,
            BLOCK_S=max(2, triton.next_power_of_2(splits)),
        )
    return out

"""Flash-attention backward in Triton: dq, dk, dv from the saved output and log-sum-exp.

Probabilities are recomputed block by block, p = exp2(s - lse). Two kernels, no atomics
(deterministic): one program per key block accumulates dk and dv over the query blocks
that can see it; one program per query block accumulates dq over its key band. A small
pre-pass computes delta = rowsum(out * dout), the softmax-gradient correction term.
"""

from __future__ import annotations

from typing import Tuple

import torch
import triton
import triton.language as tl

from ._common import (
    LOG2E,
    _visible,
    check_interpretable,
    device_guard,
    dot_precision,
    last_dim_contiguous,
    tuning_space,
    window_flags,
)

# (BLOCK_M, BLOCK_N, num_warps, num_stages) per head dim; see tuning_space.
_TILES = {
    32: [(64, 64, 4, 3), (64, 128, 8, 3), (128, 64, 8, 3), (32, 64, 4, 3), (32, 128, 4, 2), (64, 64, 8, 2)],
    64: [(64, 64, 4, 3), (64, 128, 8, 3), (32, 64, 4, 3), (64, 64, 8, 2)],
    128: [(64, 32, 8, 2), (32, 64, 8, 2)],
    "fp32": [(32, 32, 8, 1)],
}
_CONFIGS, _PRUNE = tuning_space(_TILES, 16, 32)
# Tuned per power-of-two length bucket (not per exact length) and per mask kind.
_KEY = ["LQ_BUCKET", "LK_BUCKET", "HEAD_DIM", "HAS_LEFT", "HAS_RIGHT", "DOT_PREC"]


@triton.jit
def _bwd_delta(
    Out,
    DO,
    Delta,  # Delta: (B, H, LQ) fp32
    stride_ob,
    stride_om,
    stride_oh,
    stride_db,
    stride_dm,
    stride_dh,
    H,
    LQ,
    HEAD_DIM: tl.constexpr,
    BLOCK_M: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)  # int64: batch offsets of big caches overflow int32
    h = pid_bh % H
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    mask = offs_m[:, None] < LQ
    o = tl.load(
        Out + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_om + offs_d[None, :], mask=mask, other=0.0
    )
    do = tl.load(
        DO + b * stride_db + h * stride_dh + offs_m[:, None] * stride_dm + offs_d[None, :], mask=mask, other=0.0
    )
    delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), 1)
    tl.store(Delta + pid_bh * LQ + offs_m, delta, mask=offs_m < LQ)


@triton.jit
def _dkdv_blocks(
    dk,
    dv,
    k,
    v,
    offs_n,
    q_base,
    do_base,
    lse_base,
    delta_base,
    stride_qm,
    stride_dm,
    lo,
    hi,
    LQ,
    LK,
    shift,
    qk_scale,
    win_left,
    win_right,
    HEAD_DIM: tl.constexpr,
    HAS_LEFT: tl.constexpr,
    HAS_RIGHT: tl.constexpr,
    DOT_PREC: tl.constexpr,
    BLOCK_M: tl.constexpr,
    MASKED: tl.constexpr,
):
    """Accumulate dk, dv of one key block over query blocks [lo, hi) (transposed scores)."""
    offs_d = tl.arange(0, HEAD_DIM)
    for start_m in range(lo, hi, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        q_ptrs = q_base + offs_m[:, None] * stride_qm + offs_d[None, :]
        do_ptrs = do_base + offs_m[:, None] * stride_dm + offs_d[None, :]
        if MASKED:
            q = tl.load(q_ptrs, mask=offs_m[:, None] < LQ, other=0.0)
            do = tl.load(do_ptrs, mask=offs_m[:, None] < LQ, other=0.0)
            lse = tl.load(lse_base + offs_m, mask=offs_m < LQ, other=float("inf"))
            delta = tl.load(delta_base + offs_m, mask=offs_m < LQ, other=0.0)
        else:
            q = tl.load(q_ptrs)
            do = tl.load(do_ptrs)
            lse = tl.load(lse_base + offs_m)
            delta = tl.load(delta_base + offs_m)
        s_t = tl.dot(k, tl.trans(q), input_precision=DOT_PREC) * qk_scale  # (BLOCK_N, BLOCK_M)
        p_t = tl.math.exp2(s_t - lse[None, :])
        if MASKED:
            vis = _visible(
                offs_m[None, :] + shift,
                offs_n[:, None],
                (offs_n[:, None] < LK) & (offs_m[None, :] < LQ),
                win_left,
                win_right,
                HAS_LEFT,
                HAS_RIGHT,
            )
            p_t = tl.where(vis, p_t, 0.0)
        dv += tl.dot(p_t.to(do.dtype), do, input_precision=DOT_PREC)
        dp_t = tl.dot(v, tl.trans(do), input_precision=DOT_PREC)  # (BLOCK_N, BLOCK_M)
        ds_t = p_t * (dp_t - delta[None, :])
        dk += tl.dot(ds_t.to(q.dtype), q, input_precision=DOT_PREC)
    return dk, dv


@triton.jit
def _dq_blocks(
    dq,
    q,
    do,
    lse,
    delta,
    offs_m,
    k_base,
    v_base,
    stride_kn,
    stride_vn,
    lo,
    hi,
    LQ,
    LK,
    shift,
    qk_scale,
    win_left,
    win_right,
    HEAD_DIM: tl.constexpr,
    HAS_LEFT: tl.constexpr,
    HAS_RIGHT: tl.constexpr,
    DOT_PREC: tl.constexpr,
    BLOCK_N: tl.constexpr,
    MASKED: tl.constexpr,
):
    """Accumulate dq of one query block over key blocks [lo, hi)."""
    offs_d = tl.arange(0, HEAD_DIM)
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        k_ptrs = k_base + offs_n[:, None] * stride_kn + offs_d[None, :]
        v_ptrs = v_base + offs_n[:, None] * stride_vn + offs_d[None, :]
        if MASKED:
            k = tl.load(k_ptrs, mask=offs_n[:, None] < LK, other=0.0)
            v = tl.load(v_ptrs, mask=offs_n[:, None] < LK, other=0.0)
        else:
            k = tl.load(k_ptrs)
            v = tl.load(v_ptrs)
        s = tl.dot(q, tl.trans(k), input_precision=DOT_PREC) * qk_scale  # (BLOCK_M, BLOCK_N)
        # Rows past LQ carry lse = +inf, so p is 0 there even without the mask.
        p = tl.math.exp2(s - lse[:, None])
        if MASKED:
            vis = _visible(
                (offs_m + shift)[:, None],
                offs_n[None, :],
                (offs_n[None, :] < LK) & (offs_m[:, None] < LQ),
                win_left,
                win_right,
                HAS_LEFT,
                HAS_RIGHT,
            )
            p = tl.where(vis, p, 0.0)
        dp = tl.dot(do, tl.trans(v), input_precision=DOT_PREC)
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k.dtype), k, input_precision=DOT_PREC)
    return dq


@triton.autotune(configs=_CONFIGS, prune_configs_by={"early_config_prune": _PRUNE}, key=_KEY)
@triton.jit
def _bwd_dkdv(
    Q,
    K,
    V,
    DO,
    Lse,
    Delta,
    DK,
    DV,
    stride_qb,
    stride_qm,
    stride_qh,
    stride_kb,
    stride_kn,
    stride_kh,
    stride_vb,
    stride_vn,
    stride_vh,
    stride_db,
    stride_dm,
    stride_dh,
    stride_dkb,
    stride_dkn,
    stride_dkh,
    stride_dvb,
    stride_dvn,
    stride_dvh,
    H,
    LQ,
    LK,
    qk_scale,
    sm_scale,
    win_left,
    win_right,
    LQ_BUCKET,
    LK_BUCKET,
    HEAD_DIM: tl.constexpr,
    HAS_LEFT: tl.constexpr,
    HAS_RIGHT: tl.constexpr,
    DOT_PREC: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)  # int64: batch offsets of big caches overflow int32
    h = pid_bh % H
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    kv_mask = offs_n[:, None] < LK
    k = tl.load(
        K + b * stride_kb + h * stride_kh + offs_n[:, None] * stride_kn + offs_d[None, :], mask=kv_mask, other=0.0
    )
    v = tl.load(
        V + b * stride_vb + h * stride_vh + offs_n[:, None] * stride_vn + offs_d[None, :], mask=kv_mask, other=0.0
    )
    q_base = Q + b * stride_qb + h * stride_qh
    do_base = DO + b * stride_db + h * stride_dh

    # Queries that can see this key block: key j is visible to query i (position
    # i + shift) iff i + shift - left <= j <= i + shift + right.
    shift = LK - LQ
    lo = 0
    hi = LQ
    if HAS_RIGHT:
        lo = tl.maximum(0, pid_n * BLOCK_N - shift - win_right)
        lo = (lo // BLOCK_M) * BLOCK_M
    if HAS_LEFT:
        hi = tl.minimum(hi, pid_n * BLOCK_N + BLOCK_N - 1 - shift + win_left + 1)

    # Interior query blocks (every row sees every key of this block) skip the mask.
    full_lo = lo
    if HAS_RIGHT:  # row i sees the whole block iff i + shift + right >= last key
        full_lo = tl.maximum(pid_n * BLOCK_N + BLOCK_N - 1 - shift - win_right, 0)
        full_lo = tl.maximum(tl.cdiv(full_lo, BLOCK_M) * BLOCK_M, lo)
    full_hi = (LQ // BLOCK_M) * BLOCK_M
    if HAS_LEFT:  # ... and iff i + shift - left <= first key
        full_hi = tl.minimum(full_hi, (tl.maximum(pid_n * BLOCK_N - shift + win_left + 1, 0) // BLOCK_M) * BLOCK_M)
    if pid_n * BLOCK_N + BLOCK_N > LK:  # a partial key block needs the mask everywhere
        full_hi = 0
    a_end = tl.minimum(full_lo, hi)
    b_end = tl.maximum(a_end, tl.minimum(full_hi, hi))

    dk = tl.zeros([BLOCK_N, HEAD_DIM], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, HEAD_DIM], dtype=tl.float32)
    dk, dv = _dkdv_blocks(
        dk,
        dv,
        k,
        v,
        offs_n,
        q_base,
        do_base,
        Lse + pid_bh * LQ,
        Delta + pid_bh * LQ,
        stride_qm,
        stride_dm,
        lo,
        a_end,
        LQ,
        LK,
        shift,
        qk_scale,
        win_left,
        win_right,
        HEAD_DIM,
        HAS_LEFT,
        HAS_RIGHT,
        DOT_PREC,
        BLOCK_M,
        True,
    )
    dk, dv = _dkdv_blocks(
        dk,
        dv,
        k,
        v,
        offs_n,
        q_base,
        do_base,
        Lse + pid_bh * LQ,
        Delta + pid_bh * LQ,
        stride_qm,
        stride_dm,
        a_end,
        b_end,
        LQ,
        LK,
        shift,
        qk_scale,
        win_left,
        win_right,
        HEAD_DIM,
        HAS_LEFT,
        HAS_RIGHT,
        DOT_PREC,
        BLOCK_M,
        False,
    )
    dk, dv = _dkdv_blocks(
        dk,
        dv,
        k,
        v,
        offs_n,
        q_base,
        do_base,
        Lse + pid_bh * LQ,
        Delta + pid_bh * LQ,
        stride_qm,
        stride_dm,
        b_end,
        hi,
        LQ,
        LK,
        shift,
        qk_scale,
        win_left,
        win_right,
        HEAD_DIM,
        HAS_LEFT,
        HAS_RIGHT,
        DOT_PREC,
        BLOCK_M,
        True,
    )

    out_mask = offs_n[:, None] < LK
    tl.store(
        DK + b * stride_dkb + h * stride_dkh + offs_n[:, None] * stride_dkn + offs_d[None, :],
        (dk * sm_scale).to(DK.dtype.element_ty),
        mask=out_mask,
    )
    tl.store(
        DV + b * stride_dvb + h * stride_dvh + offs_n[:, None] * stride_dvn + offs_d[None, :],
        dv.to(DV.dtype.element_ty),
        mask=out_mask,
    )


@triton.autotune(configs=_CONFIGS, prune_configs_by={"early_config_prune": _PRUNE}, key=_KEY)
@triton.jit
def _bwd_dq(
    Q,
    K,
    V,
    DO,
    Lse,
    Delta,
    DQ,
    stride_qb,
    stride_qm,
    stride_qh,
    stride_kb,
    stride_kn,
    stride_kh,
    stride_vb,
    stride_vn,
    stride_vh,
    stride_db,
    stride_dm,
    stride_dh,
    stride_dqb,
    stride_dqm,
    stride_dqh,
    H,
    LQ,
    LK,
    qk_scale,
    sm_scale,
    win_left,
    win_right,
    LQ_BUCKET,
    LK_BUCKET,
    HEAD_DIM: tl.constexpr,
    HAS_LEFT: tl.constexpr,
    HAS_RIGHT: tl.constexpr,
    DOT_PREC: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)  # int64: batch offsets of big caches overflow int32
    h = pid_bh % H
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    q_mask = offs_m[:, None] < LQ
    q = tl.load(
        Q + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qm + offs_d[None, :], mask=q_mask, other=0.0
    )
    do = tl.load(
        DO + b * stride_db + h * stride_dh + offs_m[:, None] * stride_dm + offs_d[None, :], mask=q_mask, other=0.0
    )
    lse = tl.load(Lse + pid_bh * LQ + offs_m, mask=offs_m < LQ, other=float("inf"))
    delta = tl.load(Delta + pid_bh * LQ + offs_m, mask=offs_m < LQ, other=0.0)
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh

    shift = LK - LQ
    lo = 0
    hi = LK
    if HAS_RIGHT:
        hi = tl.minimum(hi, pid_m * BLOCK_M + BLOCK_M - 1 + shift + win_right + 1)
    if HAS_LEFT:
        lo = tl.maximum(0, pid_m * BLOCK_M + shift - win_left)
        lo = (lo // BLOCK_N) * BLOCK_N

    # Interior key blocks (seen in full by every row of this query block) skip the mask.
    if HAS_RIGHT:
        full_hi = (tl.maximum(pid_m * BLOCK_M + shift + win_right + 1, 0) // BLOCK_N) * BLOCK_N
        full_hi = tl.minimum(full_hi, (LK // BLOCK_N) * BLOCK_N)
    else:
        full_hi = (LK // BLOCK_N) * BLOCK_N
    full_lo = lo
    if HAS_LEFT:
        full_lo = tl.maximum(pid_m * BLOCK_M + BLOCK_M - 1 + shift - win_left, 0)
        full_lo = tl.maximum(tl.cdiv(full_lo, BLOCK_N) * BLOCK_N, lo)
    a_end = tl.minimum(full_lo, hi)
    b_end = tl.maximum(a_end, tl.minimum(full_hi, hi))

    dq = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    dq = _dq_blocks(
        dq,
        q,
        do,
        lse,
        delta,
        offs_m,
        k_base,
        v_base,
        stride_kn,
        stride_vn,
        lo,
        a_end,
        LQ,
        LK,
        shift,
        qk_scale,
        win_left,
        win_right,
        HEAD_DIM,
        HAS_LEFT,
        HAS_RIGHT,
        DOT_PREC,
        BLOCK_N,
        True,
    )
    dq = _dq_blocks(
        dq,
        q,
        do,
        lse,
        delta,
        offs_m,
        k_base,
        v_base,
        stride_kn,
        stride_vn,
        a_end,
        b_end,
        LQ,
        LK,
        shift,
        qk_scale,
        win_left,
        win_right,
        HEAD_DIM,
        HAS_LEFT,
        HAS_RIGHT,
        DOT_PREC,
        BLOCK_N,
        False,
    )
    dq = _dq_blocks(
        dq,
        q,
        do,
        lse,
        delta,
        offs_m,
        k_base,
        v_base,
        stride_kn,
        stride_vn,
        b_end,
        hi,
        LQ,
        LK,
        shift,
        qk_scale,
        win_left,
        win_right,
        HEAD_DIM,
        HAS_LEFT,
        HAS_RIGHT,
        DOT_PREC,
        BLOCK_N,
        True,
    )

    tl.store(
        DQ + b * stride_dqb + h * stride_dqh + offs_m[:, None] * stride_dqm + offs_d[None, :],
        (dq * sm_scale).to(DQ.dtype.element_ty),
        mask=q_mask,
    )


def attention_backward(
    do: torch.Tensor,  # (B, Lq, H, D)
    q: torch.Tensor,  # (B, Lq, H, D)
    k: torch.Tensor,  # (B, Lk, H, D)
    v: torch.Tensor,  # (B, Lk, H, D)
    out: torch.Tensor,  # (B, Lq, H, D) forward output
    lse: torch.Tensor,  # (B, H, Lq) fp32 base-2 log-sum-exp from the forward
    scale: float,
    causal: bool,
    window: Tuple[int, int],
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Launch the backward kernels. -> dq (B, Lq, H, D), dk, dv (B, Lk, H, D), contiguous."""
    check_interpretable(q)
    do, q, k, v, out = (last_dim_contiguous(x) for x in (do, q, k, v, out))
    batch, lq, heads, dim = q.shape
    lk = k.shape[1]
    dq = torch.empty((batch, lq, heads, dim), dtype=q.dtype, device=q.device)
    dk = torch.empty((batch, lk, heads, dim), dtype=q.dtype, device=q.device)
    dv = torch.empty((batch, lk, heads, dim), dtype=q.dtype, device=q.device)
    delta = torch.empty((batch, heads, lq), dtype=torch.float32, device=q.device)
    left, right, has_left, has_right = window_flags(causal, window)
    buckets = (triton.next_power_of_2(lq), triton.next_power_of_2(lk))
    common = dict(HEAD_DIM=dim, HAS_LEFT=has_left, HAS_RIGHT=has_right, DOT_PREC=dot_precision(q.dtype))
    strides_in = (
        q.stride(0),
        q.stride(1),
        q.stride(2),
        k.stride(0),
        k.stride(1),
        k.stride(2),
        v.stride(0),
        v.stride(1),
        v.stride(2),
        do.stride(0),
        do.stride(1),
        do.stride(2),
    )
    with device_guard(q):
        delta_block = 64
        _bwd_delta[(triton.cdiv(lq, delta_block), batch * heads)](
            out,
            do,
            delta,
            out.stride(0),
            out.stride(1),
            out.stride(2),
            do.stride(0),
            do.stride(1),
            do.stride(2),
            heads,
            lq,
            HEAD_DIM=dim,
            BLOCK_M=delta_block,
        )
        _bwd_dkdv[lambda meta: (triton.cdiv(lk, meta["BLOCK_N"]), batch * heads)](
            q,
            k,
            v,
            do,
            lse,
            delta,
            dk,
            dv,
            *strides_in,
            dk.stride(0),
            dk.stride(1),
            dk.stride(2),
            dv.stride(0),
            dv.stride(1),
            dv.stride(2),
            heads,
            lq,
            lk,
            scale * LOG2E,
            scale,
            left,
            right,
            *buckets,
            **common,
        )
        _bwd_dq[lambda meta: (triton.cdiv(lq, meta["BLOCK_M"]), batch * heads)](
            q,
            k,
            v,
            do,
            lse,
            delta,
            dq,
            *strides_in,
            dq.stride(0),
            dq.stride(1),
            dq.stride(2),
            heads,
            lq,
            lk,
            scale * LOG2E,
            scale,
            left,
            right,
            *buckets,
            **common,
        )
    return dq, dk, dv

"""Flash-attention forward in Triton: online softmax over key blocks, never materialising
the (Lq, Lk) scores. Layout (B, L, H, D), any strides except a unit head-dim stride.

Each program owns BLOCK_M queries of one (batch, head) and walks only the key blocks its
causal/window band can touch. It writes the output and the row log-sum-exp (base 2),
which the backward pass uses to recompute probabilities.
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
    32: [(128, 64, 4, 3), (128, 64, 8, 3), (128, 128, 8, 3), (128, 32, 4, 4), (64, 64, 4, 3), (64, 128, 4, 2)],
    64: [(128, 64, 8, 3), (128, 128, 8, 3), (128, 32, 4, 4), (64, 64, 4, 3), (64, 32, 4, 4)],
    128: [(128, 64, 8, 3), (64, 32, 4, 4), (64, 64, 8, 3), (128, 32, 8, 3)],
    "fp32": [(32, 32, 8, 1)],
}
# Unequal small interpreter blocks so odd lengths span several partial blocks in the tests.
_CONFIGS, _PRUNE = tuning_space(_TILES, 32, 16)


@triton.jit
def _fwd_blocks(
    acc,
    l_i,
    m_i,
    q,
    q_pos,
    k_base,
    v_base,
    stride_kn,
    stride_vn,
    lo,
    hi,
    LK,
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
    """Online-softmax update over key blocks [lo, hi); MASKED=False only for interior blocks."""
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
        s = tl.dot(q, tl.trans(k), input_precision=DOT_PREC) * qk_scale  # (BLOCK_M, BLOCK_N), base 2
        if MASKED:
            vis = _visible(
                q_pos[:, None], offs_n[None, :], offs_n[None, :] < LK, win_left, win_right, HAS_LEFT, HAS_RIGHT
            )
            s = tl.where(vis, s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            # A row with nothing visible yet keeps m = -inf; subtract 0 instead to avoid NaN.
            m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        else:
            m_new = tl.maximum(m_i, tl.max(s, 1))
            m_safe = m_new
        p = tl.math.exp2(s - m_safe[:, None])
        alpha = tl.math.exp2(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=DOT_PREC)
        m_i = m_new
    return acc, l_i, m_i


# Tuned per power-of-two length bucket (not per exact length) and per mask kind.
_KEY = ["LQ_BUCKET", "LK_BUCKET", "HEAD_DIM", "HAS_LEFT", "HAS_RIGHT", "DOT_PREC"]


@triton.autotune(configs=_CONFIGS, prune_configs_by={"early_config_prune": _PRUNE}, key=_KEY)
@triton.jit
def _attn_fwd(
    Q,
    K,
    V,
    Out,
    Lse,  # Lse: (B, H, LQ) fp32, base-2 log-sum-exp
    stride_qb,
    stride_qm,
    stride_qh,
    stride_kb,
    stride_kn,
    stride_kh,
    stride_vb,
    stride_vn,
    stride_vh,
    stride_ob,
    stride_om,
    stride_oh,
    H,
    LQ,
    LK,
    qk_scale,
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
    q_ptrs = Q + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qm + offs_d[None, :]
    q = tl.load(q_ptrs, mask=offs_m[:, None] < LQ, other=0.0)  # (BLOCK_M, D)
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh

    # Query i sits at key position i + LK - LQ: queries are aligned to the end of the keys.
    shift = LK - LQ
    q_pos = offs_m + shift  # (BLOCK_M,)
    lo = 0
    hi = LK
    if HAS_RIGHT:
        hi = tl.minimum(hi, pid_m * BLOCK_M + BLOCK_M - 1 + shift + win_right + 1)
    if HAS_LEFT:
        lo = tl.maximum(0, pid_m * BLOCK_M + shift - win_left)
        lo = (lo // BLOCK_N) * BLOCK_N

    # Split the band into blocks needing a mask (edges) and interior blocks every row of
    # this query block sees in full: those skip all masking work (most blocks at long L).
    if HAS_RIGHT:  # all rows see key j iff j <= (first row's position) + right
        full_hi = (tl.maximum(pid_m * BLOCK_M + shift + win_right + 1, 0) // BLOCK_N) * BLOCK_N
        full_hi = tl.minimum(full_hi, (LK // BLOCK_N) * BLOCK_N)
    else:
        full_hi = (LK // BLOCK_N) * BLOCK_N
    full_lo = lo
    if HAS_LEFT:  # all rows see key j iff j >= (last row's position) - left
        full_lo = tl.maximum(pid_m * BLOCK_M + BLOCK_M - 1 + shift - win_left, 0)
        full_lo = tl.maximum(tl.cdiv(full_lo, BLOCK_N) * BLOCK_N, lo)
    a_end = tl.minimum(full_lo, hi)
    b_end = tl.maximum(a_end, tl.minimum(full_hi, hi))

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    acc, l_i, m_i = _fwd_blocks(
        acc,
        l_i,
        m_i,
        q,
        q_pos,
        k_base,
        v_base,
        stride_kn,
        stride_vn,
        lo,
        a_end,
        LK,
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
    acc, l_i, m_i = _fwd_blocks(
        acc,
        l_i,
        m_i,
        q,
        q_pos,
        k_base,
        v_base,
        stride_kn,
        stride_vn,
        a_end,
        b_end,
        LK,
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
    acc, l_i, m_i = _fwd_blocks(
        acc,
        l_i,
        m_i,
        q,
        q_pos,
        k_base,
        v_base,
        stride_kn,
        stride_vn,
        b_end,
        hi,
        LK,
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

    has_key = l_i > 0.0
    acc = acc / tl.where(has_key, l_i, 1.0)[:, None]
    # Empty rows get lse = +inf so that the backward's exp2(s - lse) is exactly 0 there.
    lse = tl.where(has_key, m_i + tl.math.log2(tl.where(has_key, l_i, 1.0)), float("inf"))
    row_mask = offs_m < LQ
    tl.store(Lse + pid_bh * LQ + offs_m, lse, mask=row_mask)
    o_ptrs = Out + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_om + offs_d[None, :]
    tl.store(o_ptrs, acc.to(Out.dtype.element_ty), mask=row_mask[:, None])


def attention_forward(
    q: torch.Tensor,  # (B, Lq, H, D)
    k: torch.Tensor,  # (B, Lk, H, D)
    v: torch.Tensor,  # (B, Lk, H, D)
    scale: float,
    causal: bool,
    window: Tuple[int, int],
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Launch the forward kernel. -> out (B, Lq, H, D) contiguous, lse (B, H, Lq) fp32 base 2."""
    check_interpretable(q)
    q, k, v = (last_dim_contiguous(x) for x in (q, k, v))
    batch, lq, heads, dim = q.shape
    lk = k.shape[1]
    out = torch.empty((batch, lq, heads, dim), dtype=q.dtype, device=q.device)
    lse = torch.empty((batch, heads, lq), dtype=torch.float32, device=q.device)
    left, right, has_left, has_right = window_flags(causal, window)

    def grid(meta):
        return (triton.cdiv(lq, meta["BLOCK_M"]), batch * heads)

    with device_guard(q):
        _attn_fwd[grid](
            q,
            k,
            v,
            out,
            lse,
            q.stride(0),
            q.stride(1),
            q.stride(2),
            k.stride(0),
            k.stride(1),
            k.stride(2),
            v.stride(0),
            v.stride(1),
            v.stride(2),
            out.stride(0),
            out.stride(1),
            out.stride(2),
            heads,
            lq,
            lk,
            scale * LOG2E,
            left,
            right,
            triton.next_power_of_2(lq),
            triton.next_power_of_2(lk),
            HEAD_DIM=dim,
            HAS_LEFT=has_left,
            HAS_RIGHT=has_right,
            DOT_PREC=dot_precision(q.dtype),
        )
    return out, lse

"""The Triton backend as torch.library custom ops: opaque to torch.compile (which uses the
fake implementations for shapes) and differentiable through register_autograd.

No ``from __future__ import annotations`` here: torch.library infers the op schemas from
real (non-string) type annotations.
"""

from typing import Tuple

import torch

Tensor = torch.Tensor


@torch.library.custom_op("amago_fast::flash_attn_fwd", mutates_args=())
def _fwd(
    q: Tensor, k: Tensor, v: Tensor, scale: float, causal: bool, win_left: int, win_right: int
) -> Tuple[Tensor, Tensor]:
    from amago_fast.kernels.attention_fwd import attention_forward

    return attention_forward(q, k, v, scale, causal, (win_left, win_right))


@_fwd.register_fake
def _fwd_fake(q, k, v, scale, causal, win_left, win_right):
    b, lq, h, d = q.shape
    return q.new_empty((b, lq, h, d)), q.new_empty((b, h, lq), dtype=torch.float32)


@torch.library.custom_op("amago_fast::flash_attn_bwd", mutates_args=())
def _bwd(
    do: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse: Tensor,
    scale: float,
    causal: bool,
    win_left: int,
    win_right: int,
) -> Tuple[Tensor, Tensor, Tensor]:
    from amago_fast.kernels.attention_bwd import attention_backward

    return attention_backward(do, q, k, v, out, lse, scale, causal, (win_left, win_right))


@_bwd.register_fake
def _bwd_fake(do, q, k, v, out, lse, scale, causal, win_left, win_right):
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)


def _setup_context(ctx, inputs, output):
    q, k, v, scale, causal, win_left, win_right = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, out, lse)
    ctx.args = (scale, causal, win_left, win_right)


def _backward(ctx, dout, dlse):
    q, k, v, out, lse = ctx.saved_tensors
    dq, dk, dv = _bwd(dout, q, k, v, out, lse, *ctx.args)
    return dq, dk, dv, None, None, None, None


_fwd.register_autograd(_backward, setup_context=_setup_context)


@torch.library.custom_op("amago_fast::flash_attn_decode", mutates_args=())
def _decode(
    q: Tensor,
    k_cache: Tensor,
    v_cache: Tensor,
    seqlens_k: Tensor,
    scale: float,
    causal: bool,
    win_left: int,
    win_right: int,
    ring: bool,
) -> Tensor:
    from amago_fast.kernels.attention_decode import attention_decode

    return attention_decode(q, k_cache, v_cache, seqlens_k, scale, causal, (win_left, win_right), ring)


@_decode.register_fake
def _decode_fake(q, k_cache, v_cache, seqlens_k, scale, causal, win_left, win_right, ring):
    return q.new_empty(q.shape)


@torch.library.custom_op("amago_fast::kv_append", mutates_args=("k_cache", "v_cache"))
def _kv_append(k: Tensor, v: Tensor, k_cache: Tensor, v_cache: Tensor, seqlens_old: Tensor, ring: bool) -> None:
    from amago_fast.kernels.attention_decode import append_kv

    append_kv(k, v, k_cache, v_cache, seqlens_old, ring)


@_kv_append.register_fake
def _kv_append_fake(k, v, k_cache, v_cache, seqlens_old, ring):
    return None


def triton_append(k_cache: Tensor, v_cache: Tensor, k: Tensor, v: Tensor, seqlens_old: Tensor, ring: bool) -> Tensor:
    """Write (B, Lnew, H, D) new tokens into the caches in place; -> (B,) lengths after."""
    _kv_append(k, v, k_cache, v_cache, seqlens_old, ring)
    return seqlens_old + k.shape[1]


def triton_attention(q: Tensor, k: Tensor, v: Tensor, scale: float, causal: bool, window: Tuple[int, int]) -> Tensor:
    """(B, Lq, H, D) x (B, Lk, H, D) -> (B, Lq, H, D) through the Triton kernels."""
    out, _ = _fwd(q, k, v, scale, causal, window[0], window[1])
    return out


def triton_decode(
    q: Tensor,
    k_cache: Tensor,
    v_cache: Tensor,
    seqlens_k: Tensor,
    scale: float,
    causal: bool,
    window: Tuple[int, int],
    ring: bool,
) -> Tensor:
    """q (B, Lq, H, D) over the already-appended cache -> (B, Lq, H, D)."""
    return _decode(q, k_cache, v_cache, seqlens_k, scale, causal, window[0], window[1], ring)

"""Public attention ops with flash-attn's signatures (drop-in replacements).

Backends: ``"triton"`` (the kernels in ``amago_fast.kernels``; CUDA tensors, or CPU under
``TRITON_INTERPRET=1``) and ``"torch"`` (SDPA; anywhere, with dropout). ``backend=None``
reads ``$AMAGO_FAST_ATTN_BACKEND`` and defaults to ``"auto"``: Triton for fp16/bf16 CUDA
tensors, PyTorch otherwise (fp32 and dropout included). Attention here is position-free:
positional information must already be in q/k/v (amago_fast adds time-index embeddings
to tokens; there is no rotary here).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

from . import _checks
from ._torch_path import append_kv, torch_attention, torch_decode


def flash_attn_func(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    dropout_p: float = 0.0,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    window_size: Sequence[int] = (-1, -1),
    softcap: float = 0.0,
    alibi_slopes: Optional[torch.Tensor] = None,
    deterministic: bool = False,
    return_attn_probs: bool = False,
    *,
    backend: Optional[str] = None,
) -> torch.Tensor:
    """Scaled dot-product attention, differentiable in q, k and v.

    Args:
        q: (batch, seqlen_q, nheads, headdim); fp16, bf16 or fp32.
        k, v: (batch, seqlen_k, nheads, headdim), same dtype and device as q.
        dropout_p: attention-probability dropout; only the "torch" backend supports > 0
            (auto picks it; forcing "triton" with dropout raises ValueError).
        softmax_scale: defaults to 1 / sqrt(headdim); otherwise a finite float > 0.
        causal: query i sees keys j <= i + seqlen_k - seqlen_q (queries aligned to the end
            of the keys, flash-attn's convention; identical to the usual mask when
            seqlen_q == seqlen_k).
        window_size: (left, right) sliding window: query i (at position p) sees keys in
            [p - left, p + right]; -1 means unbounded. causal forces right = 0.
        softcap, alibi_slopes, deterministic, return_attn_probs: accepted for flash-attn
            compatibility; only their defaults are supported (anything else raises
            ValueError). Both backends are deterministic without dropout.
        backend: "auto" | "triton" | "torch" (default: $AMAGO_FAST_ATTN_BACKEND or "auto").
    Returns:
        out: (batch, seqlen_q, nheads, headdim). Queries that see no key output zeros;
        batch 0 / seqlen_q 0 give an empty output and seqlen_k 0 zeros, as in flash-attn.
    """
    _checks.check_flash_extras(softcap, alibi_slopes, return_attn_probs)
    _checks.check_qkv(q, k, v)
    window = _checks.check_options(dropout_p, softmax_scale, window_size)
    scale = _checks.resolve_scale(softmax_scale, q.shape[-1])
    chosen = _checks.choose_backend(backend, q.device, q.shape[-1], float(dropout_p), q.dtype)
    if _checks.nothing_to_attend(q, k):
        return _checks.zeros_like_attention(q, k, v)
    if chosen == "triton":
        from ._triton_ops import triton_attention

        return triton_attention(q, k, v, scale, causal, window)
    return torch_attention(q, k, v, float(dropout_p), scale, causal, window)


def flash_attn_qkvpacked_func(
    qkv: torch.Tensor,
    dropout_p: float = 0.0,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    window_size: Sequence[int] = (-1, -1),
    softcap: float = 0.0,
    alibi_slopes: Optional[torch.Tensor] = None,
    deterministic: bool = False,
    return_attn_probs: bool = False,
    *,
    backend: Optional[str] = None,
) -> torch.Tensor:
    """:func:`flash_attn_func` on a packed tensor (AMAGO's layout).

    Args:
        qkv: (batch, seqlen, 3, nheads, headdim); index 0/1/2 of dim 2 = q/k/v. The kernels
            read the strided views directly, no copy.
        other arguments: as in :func:`flash_attn_func`.
    Returns:
        out: (batch, seqlen, nheads, headdim).
    """
    if not isinstance(qkv, torch.Tensor):
        raise TypeError(f"qkv must be a torch.Tensor, got {type(qkv).__name__}")
    if qkv.dim() != 5 or qkv.shape[2] != 3:
        raise ValueError(f"qkv must be (batch, seqlen, 3, nheads, headdim), got shape {tuple(qkv.shape)}")
    q, k, v = qkv.unbind(dim=2)  # each (B, L, H, D)
    return flash_attn_func(
        q,
        k,
        v,
        dropout_p,
        softmax_scale,
        causal,
        window_size,
        softcap,
        alibi_slopes,
        deterministic,
        return_attn_probs,
        backend=backend,
    )


def flash_attn_with_kvcache(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    k: Optional[torch.Tensor] = None,
    v: Optional[torch.Tensor] = None,
    cache_seqlens: Union[None, int, torch.Tensor] = None,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    window_size: Sequence[int] = (-1, -1),
    *,
    ring: bool = False,
    backend: Optional[str] = None,
) -> torch.Tensor:
    """Attention over a key/value cache, appending new keys/values in place (inference only).

    Args:
        q: (batch, seqlen_q, nheads, headdim); seqlen_q = 1 when acting step by step.
        k_cache, v_cache: (batch, seqlen_cache, nheads, headdim), last dim contiguous.
            Modified IN PLACE when k/v are given (then an expanded, stride-0 view is
            refused: its rows would overwrite each other).
        k, v: optional (batch, seqlen_new, nheads, headdim) new tokens, written at
            cache_seqlens[b] .. cache_seqlens[b] + seqlen_new - 1 of row b.
        cache_seqlens: (batch,) int32, the number of tokens already in each row (they may
            differ per row, 0 included), or an int for all rows, or None = cache full.
            Not updated here: as in flash-attn, the caller adds seqlen_new afterwards.
        softmax_scale: defaults to 1 / sqrt(headdim).
        causal: queries are the LAST seqlen_q tokens of each row (n = cache_seqlens +
            seqlen_new keys): query i sits at position n - seqlen_q + i and sees keys up to it.
        window_size: (left, right) as in :func:`flash_attn_func`, on the same positions.
        ring: ring-buffer mode for a full context without any copy. cache_seqlens then
            counts every token ever written to the row and may exceed seqlen_cache; token
            t lives in slot t % seqlen_cache, so a new token overwrites the oldest one.
            Attended keys are the most recent min(n, seqlen_cache) tokens, further
            restricted by causal/window on their true positions. Slot order does not
            matter because attention is position-free: positional information must be in
            the tokens already (amago_fast adds time-index embeddings before projecting
            k/v; no rotary here). With seqlen_new > 1, an early query of the chunk does not
            see keys that later tokens of the same chunk overwrote.
        backend: "auto" | "triton" | "torch" (default: $AMAGO_FAST_ATTN_BACKEND or "auto").
    Returns:
        out: (batch, seqlen_q, nheads, headdim); zeros for a query that sees no key.
    """
    seqlens = _checks.check_cache(q, k_cache, v_cache, k, v, cache_seqlens, bool(ring))
    window = _checks.check_options(0.0, softmax_scale, window_size)
    scale = _checks.resolve_scale(softmax_scale, q.shape[-1])
    chosen = _checks.choose_backend(backend, q.device, q.shape[-1], 0.0, q.dtype)
    if k is not None and (k.shape[1] == 0 or q.shape[0] == 0):
        k = v = None  # nothing to append
    if _checks.nothing_to_attend(q, k_cache):  # batch 0, seqlen_q 0 or an empty cache
        with torch.no_grad():
            append_kv(k_cache, v_cache, k, v, seqlens, bool(ring))
        return q.new_zeros(q.shape)
    if chosen == "triton":
        from ._triton_ops import triton_append, triton_decode

        seqlens_k = seqlens if k is None else triton_append(k_cache, v_cache, k, v, seqlens, bool(ring))
        return triton_decode(q, k_cache, v_cache, seqlens_k, scale, causal, window, bool(ring))
    with torch.no_grad():
        seqlens_k = append_kv(k_cache, v_cache, k, v, seqlens, bool(ring))  # (B,) int32
    return torch_decode(q, k_cache, v_cache, seqlens_k, scale, causal, window, bool(ring))

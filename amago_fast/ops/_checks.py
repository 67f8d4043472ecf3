"""Input validation for the public attention ops: every bad input becomes a ValueError
(or TypeError for non-tensors) naming the argument, raised before any kernel launch."""

from __future__ import annotations

import math
import os
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
TRITON_HEAD_DIMS = (16, 32, 64, 128)
BACKENDS = ("auto", "triton", "torch")
BACKEND_ENV = "AMAGO_FAST_ATTN_BACKEND"


def check_tensor(name: str, t: object, ndim: int) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dims, got shape {tuple(t.shape)}")
    if t.dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"{name} has unsupported dtype {t.dtype}; use float16, bfloat16 or float32")
    return t


def check_same(name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    """Same dtype and device as the reference tensor."""
    if t.dtype != ref.dtype:
        raise ValueError(f"{name} has dtype {t.dtype} but {ref_name} has {ref.dtype}")
    if t.device != ref.device:
        raise ValueError(f"{name} is on {t.device} but {ref_name} is on {ref.device}")


def check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """q (B, Lq, H, D), k/v (B, Lk, H, D)."""
    check_tensor("q", q, 4)
    check_tensor("k", k, 4)
    check_tensor("v", v, 4)
    check_same("k", k, "q", q)
    check_same("v", v, "q", q)
    if k.shape != v.shape:
        raise ValueError(f"k and v must have the same shape, got {tuple(k.shape)} and {tuple(v.shape)}")
    b, lq, h, d = q.shape
    if k.shape[0] != b or k.shape[2] != h or k.shape[3] != d:
        raise ValueError(f"k must be (batch={b}, seqlen_k, nheads={h}, headdim={d}) to match q, got {tuple(k.shape)}")
    if h == 0 or d == 0:
        raise ValueError(f"nheads and headdim must be >= 1, got q {tuple(q.shape)}")


def nothing_to_attend(q: torch.Tensor, k: torch.Tensor) -> bool:
    """batch 0, seqlen_q 0 or seqlen_k 0: flash-attn returns empty outputs (zeros for
    queries that see no key) instead of raising."""
    return q.shape[0] == 0 or q.shape[1] == 0 or k.shape[1] == 0


def zeros_like_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(B, Lq, H, D) zeros that stay in the autograd graph of q, k and v (zero gradients).
    torch.where instead of `* 0`, so an inf/NaN input cannot turn the zeros into NaN."""
    no = torch.zeros((), dtype=torch.bool, device=q.device)
    kv = torch.where(no, k.sum() + v.sum(), 0.0)  # () zero, a graph edge to k and v
    return torch.where(no, q, 0.0) + kv


def check_options(dropout_p: float, softmax_scale: Optional[float], window_size: Sequence[int]) -> Tuple[int, int]:
    """Validates the scalar options; returns window_size as an int pair."""
    if not isinstance(dropout_p, (int, float)) or not 0.0 <= float(dropout_p) < 1.0:
        raise ValueError(f"dropout_p must be a float in [0, 1), got {dropout_p!r}")
    if softmax_scale is not None:
        if (
            isinstance(softmax_scale, bool)
            or not isinstance(softmax_scale, (int, float))
            or not math.isfinite(softmax_scale)
            or softmax_scale <= 0
        ):
            raise ValueError(f"softmax_scale must be a finite float > 0 or None, got {softmax_scale!r}")
    return check_window(window_size)


def check_flash_extras(softcap: float, alibi_slopes: object, return_attn_probs: bool) -> None:
    """flash-attn arguments kept for signature compatibility; only defaults are supported."""
    if softcap != 0.0:
        raise ValueError(f"softcap={softcap!r} is not supported (only 0.0)")
    if alibi_slopes is not None:
        raise ValueError("alibi_slopes is not supported (positions are added to tokens, not to scores)")
    if return_attn_probs:
        raise ValueError("return_attn_probs=True is not supported (the kernels never materialise them)")


def check_window(window_size: Sequence[int]) -> Tuple[int, int]:
    try:
        if isinstance(window_size, (str, bytes)):
            raise TypeError
        left, right = (int(w) for w in window_size)
        ok = all(int(w) == w for w in window_size)
    except (TypeError, ValueError):
        ok = False
    if not ok or left < -1 or right < -1:
        raise ValueError(f"window_size must be a pair of ints >= -1 (-1 = unbounded), got {window_size!r}")
    return left, right


def resolve_scale(softmax_scale: Optional[float], head_dim: int) -> float:
    return 1.0 / math.sqrt(head_dim) if softmax_scale is None else float(softmax_scale)


def triton_interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def choose_backend(
    backend: Optional[str],
    device: torch.device,
    head_dim: int,
    dropout_p: float = 0.0,
    dtype: torch.dtype = torch.bfloat16,
) -> str:
    """Resolve "auto"/"triton"/"torch" (argument, else $AMAGO_FAST_ATTN_BACKEND, else auto).

    auto: Triton for fp16/bf16 CUDA tensors when Triton is installed, the head dim is one
    the kernels compile for, and there is no dropout; PyTorch otherwise. fp32 goes to
    PyTorch under auto because the kernels keep fp32 exact with full-precision (non
    tensor-core) dots, which SDPA's fp32 kernels beat; forcing "triton" still works. Forcing "triton" on an input it
    cannot handle is an error rather than a silent fallback.
    """
    if backend is None:
        backend = os.environ.get(BACKEND_ENV, "auto") or "auto"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} (or ${BACKEND_ENV}), got {backend!r}")
    if backend == "torch":
        return "torch"
    if backend == "auto":
        ok = (
            device.type == "cuda"
            and dtype in (torch.float16, torch.bfloat16)
            and head_dim in TRITON_HEAD_DIMS
            and dropout_p == 0.0
            and triton_available()
        )
        return "triton" if ok else "torch"
    # Forced Triton: explain exactly what stands in the way.
    if not triton_available():
        raise ValueError("backend='triton' but triton is not installed (pip install amago_fast[triton])")
    if device.type != "cuda" and not triton_interpreting():
        raise ValueError(
            f"backend='triton' needs CUDA tensors (got device {device}); "
            "set TRITON_INTERPRET=1 before importing triton to run the kernels on CPU"
        )
    if head_dim not in TRITON_HEAD_DIMS:
        raise ValueError(f"headdim {head_dim} is not supported by the Triton kernels; use one of {TRITON_HEAD_DIMS}")
    if dropout_p > 0.0:
        raise ValueError("dropout_p > 0 is only supported by backend='torch' (the Triton kernels have no dropout)")
    return "triton"


def check_cache(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    k: Optional[torch.Tensor],
    v: Optional[torch.Tensor],
    cache_seqlens: Union[None, int, torch.Tensor],
    ring: bool,
) -> torch.Tensor:
    """Validate decode inputs; returns cache_seqlens as a (B,) int32 tensor on q's device."""
    check_tensor("q", q, 4)
    check_tensor("k_cache", k_cache, 4)
    check_tensor("v_cache", v_cache, 4)
    check_same("k_cache", k_cache, "q", q)
    check_same("v_cache", v_cache, "q", q)
    b, lq, h, d = q.shape
    if k_cache.shape != v_cache.shape:
        raise ValueError(f"k_cache and v_cache shapes differ: {tuple(k_cache.shape)} vs {tuple(v_cache.shape)}")
    lmax = k_cache.shape[1]
    if k_cache.shape[0] != b or k_cache.shape[2] != h or k_cache.shape[3] != d:
        raise ValueError(
            f"k_cache must be (batch={b}, seqlen_cache, nheads={h}, headdim={d}), got {tuple(k_cache.shape)}"
        )
    if h == 0 or d == 0:
        raise ValueError(f"nheads and headdim must be >= 1, got q {tuple(q.shape)}")
    if k_cache.stride(-1) != 1 or v_cache.stride(-1) != 1:
        raise ValueError("k_cache and v_cache must be contiguous in the last (headdim) dimension")
    if (k is None) != (v is None):
        raise ValueError("k and v must be given together (or both None)")
    lnew = 0
    if k is not None:
        check_tensor("k", k, 4)
        check_tensor("v", v, 4)
        check_same("k", k, "q", q)
        check_same("v", v, "q", q)
        if k.shape != v.shape:
            raise ValueError(f"k and v must have the same shape, got {tuple(k.shape)} and {tuple(v.shape)}")
        if k.shape[0] != b or k.shape[2] != h or k.shape[3] != d:
            raise ValueError(f"k must be (batch={b}, seqlen_new, nheads={h}, headdim={d}), got {tuple(k.shape)}")
        lnew = k.shape[1]
        for name, t in (("k_cache", k_cache), ("v_cache", v_cache)):
            if any(st == 0 and n > 1 for st, n in zip(t.stride(), t.shape)):
                raise ValueError(
                    f"{name} is an expanded (stride-0) view, but new tokens are written into it in "
                    "place, so its rows would overwrite each other; pass a tensor that owns its "
                    "memory (e.g. .contiguous())"
                )
        if cache_seqlens is None:
            raise ValueError("cache_seqlens is required when appending new k/v (where would they go?)")
        if lnew > lmax:
            raise ValueError(f"k has {lnew} new tokens but the cache holds only seqlen_cache={lmax}")
    if cache_seqlens is None:
        return torch.full((b,), lmax, dtype=torch.int32, device=q.device)
    if isinstance(cache_seqlens, (int, np.integer)) and not isinstance(cache_seqlens, bool):
        if not 0 <= int(cache_seqlens) < 2**31:
            raise ValueError(f"cache_seqlens={int(cache_seqlens)} is outside [0, 2**31) (int32 lengths)")
        cache_seqlens = torch.full((b,), int(cache_seqlens), dtype=torch.int32, device=q.device)
    if not isinstance(cache_seqlens, torch.Tensor):
        raise TypeError(
            f"cache_seqlens must be an int32 tensor (batch,), an int or None, got {type(cache_seqlens).__name__}"
        )
    if cache_seqlens.dtype not in (torch.int32, torch.int64) or cache_seqlens.shape != (b,):
        raise ValueError(
            f"cache_seqlens must be an int32 tensor of shape ({b},), got {cache_seqlens.dtype} {tuple(cache_seqlens.shape)}"
        )
    if cache_seqlens.device != q.device:
        raise ValueError(f"cache_seqlens is on {cache_seqlens.device} but q is on {q.device}")
    # One small device-to-host copy (no extra kernels): an out-of-range length would
    # otherwise read or write out of bounds.
    values = cache_seqlens.tolist()
    lo, hi = min(values, default=0), max(values, default=0)
    if lo < 0:
        raise ValueError(f"cache_seqlens must be >= 0, got min {lo}")
    if not ring and hi + lnew > lmax:
        raise ValueError(
            f"cache too small: cache_seqlens max {hi} + {lnew} new tokens > seqlen_cache {lmax} "
            "(use a larger cache or ring=True)"
        )
    if ring and hi + lnew >= 2**31:
        raise ValueError("cache_seqlens would overflow int32")
    return cache_seqlens.to(torch.int32)

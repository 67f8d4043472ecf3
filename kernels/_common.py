"""Helpers shared by the attention kernels: the visibility mask and launch settings."""

from __future__ import annotations

import contextlib
from typing import Tuple

import torch
import triton
import triton.language as tl
from triton import knobs

LOG2E = 1.4426950408889634  # scores are kept in base 2 so the kernels can use exp2


def interpreting() -> bool:
    """True when the kernels were defined under TRITON_INTERPRET=1 (CPU interpreter)."""
    return bool(knobs.runtime.interpret)


def window_flags(causal: bool, window: Tuple[int, int]) -> Tuple[int, int, bool, bool]:
    """(left, right, HAS_LEFT, HAS_RIGHT) with causal folded in as right = 0."""
    left, right = window
    if causal:
        right = 0
    return max(left, 0), max(right, 0), left >= 0, right >= 0


def dot_precision(dtype: torch.dtype) -> str:
    # fp32 inputs get full-precision dots: tf32 would break the fp32 accuracy contract.
    return "ieee" if dtype == torch.float32 else "tf32"


def check_interpretable(t: torch.Tensor) -> None:
    if t.device.type != "cuda" and not interpreting():
        raise ValueError(
            f"Triton kernels got a tensor on {t.device}; they run on CUDA, or on CPU only when "
            "TRITON_INTERPRET=1 was set before amago_fast.kernels was first imported"
        )


def device_guard(t: torch.Tensor):
    """Launch on the tensor's GPU (Triton launches on the *current* CUDA device)."""
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def last_dim_contiguous(t: torch.Tensor) -> torch.Tensor:
    """The kernels index the head dim with stride 1; other strides are passed through."""
    return t if t.stride(-1) == 1 else t.contiguous()


@triton.jit
def _visible(
    q_pos,
    k_pos,
    valid,  # (M, 1) positions, (1, N) positions, (M, N) or broadcastable bool
    win_left,
    win_right,
    HAS_LEFT: tl.constexpr,
    HAS_RIGHT: tl.constexpr,
):
    """flash-attn window rule on absolute positions: q_pos - left <= k_pos <= q_pos + right."""
    if HAS_RIGHT:
        valid = valid & (k_pos <= q_pos + win_right)
    if HAS_LEFT:
        valid = valid & (k_pos >= q_pos - win_left)
    return valid


def tuning_space(table, interp_block_m: int, interp_block_n: int):
    """(configs, prune) for triton.autotune from {head dim or "fp32": [(BM, BN, warps, stages)]}.

    The lists were chosen by compiling for sm_90 and dropping tiles that spill registers
    (large D needs smaller tiles / more warps). fp32 inputs use full-precision FMA dots,
    which want small tiles and more warps. Under the interpreter: one small config.
    """
    if interpreting():
        cfg = triton.Config({"BLOCK_M": interp_block_m, "BLOCK_N": interp_block_n}, num_warps=4, num_stages=1)
        return [cfg], lambda configs, named_args, **kw: configs
    shapes = sorted({t for tiles in table.values() for t in tiles})
    configs = [triton.Config({"BLOCK_M": m, "BLOCK_N": n}, num_warps=w, num_stages=st) for m, n, w, st in shapes]

    def prune(configs, named_args, **kwargs):
        if kwargs.get("DOT_PREC", named_args.get("DOT_PREC")) == "ieee":
            allowed = set(table["fp32"])
        else:
            dim = kwargs.get("HEAD_DIM", named_args.get("HEAD_DIM"))
            allowed = set(table[min((d for d in table if d != "fp32" and d >= dim), default=128)])
        keep = [c for c in configs if (c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"], c.num_warps, c.num_stages) in allowed]
        return keep or configs[:1]

    return configs, prune

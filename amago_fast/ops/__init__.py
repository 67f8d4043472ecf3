"""Attention ops with flash-attn's signatures: Triton kernels on CUDA, PyTorch elsewhere.

See docs/attention.md. ``amago_fast.ops.reference`` holds the pure-PyTorch ground truth.
"""

from __future__ import annotations

from .attention import flash_attn_func, flash_attn_qkvpacked_func, flash_attn_with_kvcache

__all__ = ["flash_attn_func", "flash_attn_qkvpacked_func", "flash_attn_with_kvcache"]

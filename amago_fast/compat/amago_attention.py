"""An attention type for AMAGO's Transformer, backed by amago_fast's attention ops.

AMAGO (UT-Austin-RPL/amago) picks its attention with a class: its Transformer builds
``attention_type(causal=True, dropout=p)`` once per layer and calls

    out = attn(qkv=qkv, key_cache=k, val_cache=v, cache_seqlens=seqlens)

- training: ``qkv`` (B, L, 3, H, D), no cache -> causal attention (B, L, H, D);
- acting: caches (B, Lmax, H, D) and ``cache_seqlens`` (B,) int32; the new keys/values
  are written into the caches at ``cache_seqlens`` in place and the new query attends
  to the cache up to and including them. AMAGO fills unused cache slots with NaN on
  purpose ("make silent bugs louder"), so those slots must never reach the output.

Usage (with amago installed):

    from amago_fast.compat import AmagoFlashAttention
    traj_encoder = partial(TformerTrajEncoder, attention_type=AmagoFlashAttention)

The class subclasses ``amago.nets.transformer.SelfAttention`` when amago can be
imported (so AMAGO's type checks accept it) and is a plain ``nn.Module`` otherwise.
amago is looked up when this module is first imported, never by ``import amago_fast``.
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

__all__ = ["AmagoFlashAttention", "make_amago_attention_class", "find_amago_base"]


def find_amago_base() -> type:
    """AMAGO's ``SelfAttention`` base class if amago imports cleanly, else ``nn.Module``."""
    try:
        if importlib.util.find_spec("amago") is None:
            return nn.Module
        module = importlib.import_module("amago.nets.transformer")
        base = getattr(module, "SelfAttention")
    except Exception as exc:  # amago present but broken (missing gin, einops, ...)
        warnings.warn(
            f"amago is installed but amago.nets.transformer.SelfAttention could not be "
            f"imported ({exc!r}); AmagoFlashAttention falls back to a plain nn.Module.",
            RuntimeWarning,
            stacklevel=2,
        )
        return nn.Module
    if not (isinstance(base, type) and issubclass(base, nn.Module)):
        return nn.Module
    return base


def _check_window(window_size: Sequence[int]) -> Tuple[int, int]:
    if len(window_size) != 2 or not all(isinstance(w, int) for w in window_size):
        raise ValueError(f"window_size must be a pair of ints, got {window_size!r}")
    if any(w < -1 for w in window_size):
        raise ValueError(f"window_size entries must be >= -1, got {window_size!r}")
    return (int(window_size[0]), int(window_size[1]))


def _check_cache_inputs(qkv, key_cache, val_cache, cache_seqlens) -> torch.Tensor:
    """Validate the decode path and return ``cache_seqlens`` as int32 on the cache device."""
    B, L, _, H, D = qkv.shape
    for name, cache in (("key_cache", key_cache), ("val_cache", val_cache)):
        if not isinstance(cache, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(cache).__name__}")
        if cache.dim() != 4 or cache.shape[0] != B or cache.shape[2:] != (H, D):
            raise ValueError(
                f"{name} must be (batch={B}, max_seqlen, nheads={H}, headdim={D}), got shape {tuple(cache.shape)}"
            )
    if key_cache.shape != val_cache.shape:
        raise ValueError(f"key_cache and val_cache shapes differ: {tuple(key_cache.shape)} vs {tuple(val_cache.shape)}")
    if not isinstance(cache_seqlens, torch.Tensor):
        cache_seqlens = torch.as_tensor(cache_seqlens)
    if cache_seqlens.dim() == 0:
        cache_seqlens = cache_seqlens.expand(B)
    if cache_seqlens.shape != (B,):
        raise ValueError(f"cache_seqlens must be (batch={B},), got {tuple(cache_seqlens.shape)}")
    if cache_seqlens.dtype.is_floating_point or cache_seqlens.dtype == torch.bool:
        raise TypeError(f"cache_seqlens must be an integer tensor, got {cache_seqlens.dtype}")
    lo, hi = int(cache_seqlens.min()), int(cache_seqlens.max())
    if lo < 0 or hi + L > key_cache.shape[1]:
        raise ValueError(
            f"cache_seqlens must lie in [0, max_seqlen - seqlen] = [0, {key_cache.shape[1] - L}] "
            f"so the {L} new key(s) fit in the cache; got range [{lo}, {hi}]"
        )
    return cache_seqlens.to(device=key_cache.device, dtype=torch.int32)


def make_amago_attention_class(base: type = nn.Module) -> type:
    """Build the adapter class on top of ``base`` (AMAGO's ``SelfAttention`` or ``nn.Module``).

    Exposed so tests and unusual setups (a vendored or patched AMAGO) can choose the base.
    """

    class AmagoFlashAttention(base):  # type: ignore[misc, valid-type]
        """AMAGO ``SelfAttention`` backed by ``amago_fast.flash_attn_*`` (Triton on CUDA).

        Args:
            causal: causal mask (AMAGO always passes True for its trajectory encoder).
            dropout: attention-probability dropout, applied only in training mode.
            window_size: flash-attn sliding window (left, right); (-1, -1) = full.
            softmax_scale: defaults to 1/sqrt(head_dim).
            dtype: cast qkv to this dtype before attention (AMAGO's FlashAttention uses
                bfloat16); None keeps the input dtype. The cache path always computes in
                the caches' dtype, since new keys/values are written into them.
        """

        def __init__(
            self,
            causal: bool = True,
            dropout: float = 0.0,
            window_size: Sequence[int] = (-1, -1),
            softmax_scale: Optional[float] = None,
            dtype: Optional[torch.dtype] = None,
        ):
            if not 0.0 <= float(dropout) < 1.0:
                raise ValueError(f"dropout must be in [0, 1), got {dropout}")
            if base is nn.Module:
                super().__init__()
            else:
                super().__init__(causal=causal, dropout=dropout)
            # AMAGO's base stores these two; set them again so both bases agree.
            self.causal = bool(causal)
            self.dropout = float(dropout)
            self.window_size = _check_window(window_size)
            self.softmax_scale = softmax_scale
            self.dtype = dtype

        def extra_repr(self) -> str:
            return f"causal={self.causal}, dropout={self.dropout}, window_size={self.window_size}, dtype={self.dtype}"

        def forward(
            self,
            qkv: torch.Tensor,
            key_cache: Optional[torch.Tensor] = None,
            val_cache: Optional[torch.Tensor] = None,
            cache_seqlens: Optional[torch.Tensor] = None,
        ) -> torch.Tensor:
            """qkv (B, L, 3, H, D) -> (B, L, H, D); see the module docstring for the cache path."""
            from amago_fast import flash_attn_qkvpacked_func, flash_attn_with_kvcache

            if not isinstance(qkv, torch.Tensor):
                raise TypeError(f"qkv must be a torch.Tensor, got {type(qkv).__name__}")
            if qkv.dim() != 5 or qkv.shape[2] != 3:
                raise ValueError(f"qkv must be (batch, seqlen, 3, nheads, headdim), got shape {tuple(qkv.shape)}")
            if self.dtype is not None:
                qkv = qkv.to(self.dtype)
            # AMAGO's own rule: any missing piece of the cache means the training path.
            if key_cache is None or val_cache is None or cache_seqlens is None:
                return flash_attn_qkvpacked_func(
                    qkv,
                    dropout_p=self.dropout if self.training else 0.0,
                    softmax_scale=self.softmax_scale,
                    causal=self.causal,
                    window_size=self.window_size,
                )
            seqlens = _check_cache_inputs(qkv, key_cache, val_cache, cache_seqlens)
            q, k, v = qkv.to(key_cache.dtype).unbind(2)  # each (B, L, H, D)
            kw = dict(softmax_scale=self.softmax_scale, causal=self.causal, window_size=self.window_size)
            if key_cache.is_cuda:
                # The kernel never reads past cache_seqlens + L, so AMAGO's NaN slots are inert.
                return flash_attn_with_kvcache(q, key_cache, val_cache, k=k, v=v, cache_seqlens=seqlens, **kw)
            # Dense (PyTorch) path: masked scores still multiply V, and 0 * NaN = NaN, so
            # write the new keys here and attend over a NaN-free copy of the used prefix,
            # as AMAGO's own VanillaAttention does.
            B, L = q.shape[:2]
            cols = seqlens.long()[:, None] + torch.arange(L, device=q.device)  # (B, L)
            rows = torch.arange(B, device=q.device)[:, None]
            key_cache[rows, cols] = k
            val_cache[rows, cols] = v
            used = int(seqlens.max()) + L
            return flash_attn_with_kvcache(
                q,
                torch.nan_to_num(key_cache[:, :used]),  # (B, used, H, D)
                torch.nan_to_num(val_cache[:, :used]),
                cache_seqlens=seqlens + L,
                **kw,
            )

    AmagoFlashAttention.__qualname__ = "AmagoFlashAttention"
    AmagoFlashAttention.__module__ = __name__
    return AmagoFlashAttention


AmagoFlashAttention = make_amago_attention_class(find_amago_base())

"""AmagoFlashAttention: AMAGO's SelfAttention contract on amago_fast's attention ops."""

from __future__ import annotations

import importlib
import sys

import pytest
import torch
from torch import nn

from amago_fast.compat import amago_attention as aa

SHAPES = [(1, 1, 1, 8), (2, 17, 2, 16), (3, 97, 4, 32), (2, 129, 2, 8)]  # (B, L, H, D)


def _qkv(B, L, H, D, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, L, 3, H, D, generator=g, dtype=dtype)


def _nan_cache(B, Lmax, H, D, dtype=torch.float32):
    return torch.full((B, Lmax, H, D), float("nan"), dtype=dtype)


# ---- class structure ---------------------------------------------------------------


def test_plain_module_when_amago_absent():
    if importlib.util.find_spec("amago") is not None:
        pytest.skip("amago is installed here")
    assert aa.find_amago_base() is nn.Module
    assert aa.AmagoFlashAttention.__bases__ == (nn.Module,)
    attn = aa.AmagoFlashAttention(causal=True, dropout=0.1)
    assert attn.causal is True and attn.dropout == 0.1


def test_subclasses_amago_selfattention_when_importable(fake_amago, monkeypatch, ref):
    assert aa.find_amago_base() is ref.FakeSelfAttention
    # a fresh import of the module (as in a process where amago is installed)
    monkeypatch.delitem(sys.modules, "amago_fast.compat.amago_attention")
    fresh = importlib.import_module("amago_fast.compat.amago_attention")
    try:
        cls = fresh.AmagoFlashAttention
        assert issubclass(cls, ref.FakeSelfAttention)
        # AMAGO's construction call, by keyword
        attn = cls(causal=True, dropout=0.05)
        assert attn.fake_base_init_called and attn.causal and attn.dropout == 0.05
        assert isinstance(attn, nn.Module)
    finally:
        sys.modules["amago_fast.compat.amago_attention"] = aa  # leave the original in place


def test_broken_amago_falls_back_with_warning(fake_amago, monkeypatch):
    monkeypatch.delattr(fake_amago, "SelfAttention")
    with pytest.warns(RuntimeWarning, match="SelfAttention"):
        assert aa.find_amago_base() is nn.Module


# ---- training path -----------------------------------------------------------------


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "full"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}L{}H{}D{}".format(*s))
def test_training_path_matches_reference(shape, causal, ref):
    qkv = _qkv(*shape)
    attn = aa.AmagoFlashAttention(causal=causal, dropout=0.0)
    tri = attn(qkv=qkv, key_cache=None, val_cache=None, cache_seqlens=None)  # AMAGO's call
    expected = ref.causal(qkv, causal=causal)
    assert tri.shape == shape and tri.dtype == qkv.dtype
    torch.testing.assert_close(tri.double(), expected, atol=2e-5, rtol=1e-4)


def test_training_path_gradients_match_reference(ref):
    qkv = _qkv(2, 33, 2, 16).requires_grad_(True)
    qkv_ref = qkv.detach().double().requires_grad_(True)
    g = torch.randn(2, 33, 2, 16, dtype=torch.float64)
    aa.AmagoFlashAttention()(qkv).backward(g.float())
    ref.causal(qkv_ref).backward(g)
    torch.testing.assert_close(qkv.grad.double(), qkv_ref.grad, atol=1e-4, rtol=1e-3)


def test_partial_cache_means_training_path(ref):
    # AMAGO treats a missing key or value cache as "no cache"
    qkv = _qkv(2, 9, 2, 8)
    attn = aa.AmagoFlashAttention()
    out = attn(qkv, key_cache=_nan_cache(2, 16, 2, 8), val_cache=None, cache_seqlens=torch.zeros(2, dtype=torch.int32))
    torch.testing.assert_close(out.double(), ref.causal(qkv), atol=2e-5, rtol=1e-4)


def test_dropout_only_in_training_mode(ref):
    qkv = _qkv(2, 16, 2, 8)
    attn = aa.AmagoFlashAttention(dropout=0.5).eval()
    torch.testing.assert_close(attn(qkv).double(), ref.causal(qkv), atol=2e-5, rtol=1e-4)
    attn.train()
    torch.manual_seed(0)
    assert not torch.allclose(attn(qkv).double(), ref.causal(qkv), atol=1e-3)


def test_dtype_option_casts_like_amago_flash(ref):
    qkv = _qkv(2, 16, 2, 16)
    out = aa.AmagoFlashAttention(dtype=torch.bfloat16)(qkv)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.double(), ref.causal(qkv.bfloat16()), atol=3e-2, rtol=3e-2)


# ---- cache (acting) path -----------------------------------------------------------


@pytest.mark.parametrize("seqlen_dtype", [torch.int32, torch.int64])
def test_decode_writes_cache_in_place_and_ignores_nan_slots(seqlen_dtype, ref):
    B, Lmax, H, D = 4, 12, 2, 8
    kc, vc = _nan_cache(B, Lmax, H, D), _nan_cache(B, Lmax, H, D)
    seqlens = torch.tensor([0, 3, 7, Lmax - 1], dtype=seqlen_dtype)
    g = torch.Generator().manual_seed(1)
    for b in range(B):  # fill the valid prefix of each row; the rest stays NaN
        n = int(seqlens[b])
        kc[b, :n] = torch.randn(n, H, D, generator=g)
        vc[b, :n] = torch.randn(n, H, D, generator=g)
    before_k, before_v = kc.clone(), vc.clone()
    qkv = _qkv(B, 1, H, D, seed=2)
    out = aa.AmagoFlashAttention().eval()(qkv, key_cache=kc, val_cache=vc, cache_seqlens=seqlens)
    assert out.shape == (B, 1, H, D) and torch.isfinite(out).all()
    rows = torch.arange(B)
    torch.testing.assert_close(kc[rows, seqlens.long()], qkv[:, 0, 1])  # new keys written
    torch.testing.assert_close(vc[rows, seqlens.long()], qkv[:, 0, 2])
    written = torch.zeros(B, Lmax, dtype=torch.bool)
    written[rows, seqlens.long()] = True
    untouched = ~written
    assert torch.equal(kc[untouched].isnan(), before_k[untouched].isnan())
    torch.testing.assert_close(kc[untouched].nan_to_num(), before_k[untouched].nan_to_num())
    torch.testing.assert_close(vc[untouched].nan_to_num(), before_v[untouched].nan_to_num())
    expected = ref.decode(qkv[:, :, 0], kc, vc, seqlens)
    torch.testing.assert_close(out.double(), expected, atol=2e-5, rtol=1e-4)


def test_rollout_with_resets_matches_training_path(ref):
    """Acting token by token (rows reset at different steps) equals causal attention over
    each row's current episode: the invariant AMAGO relies on between training and acting."""
    B, T, H, D, Lmax = 3, 20, 2, 16, 32
    qkv = _qkv(B, T, H, D, seed=3)
    resets = {0: [0], 1: [0, 5], 2: [0, 11, 12]}  # steps at which each row starts an episode
    attn = aa.AmagoFlashAttention().eval()
    kc, vc = _nan_cache(B, Lmax, H, D), _nan_cache(B, Lmax, H, D)
    seqlens = torch.zeros(B, dtype=torch.int32)
    for t in range(T):
        for b in range(B):
            if t in resets[b]:
                seqlens[b] = 0
        out = attn(qkv[:, t : t + 1], key_cache=kc, val_cache=vc, cache_seqlens=seqlens)
        for b in range(B):
            start = max(r for r in resets[b] if r <= t)
            expected = ref.causal(qkv[b : b + 1, start : t + 1])[:, -1]
            torch.testing.assert_close(out[b : b + 1, 0].double(), expected, atol=2e-5, rtol=1e-4)
        seqlens += 1


# ---- bad input ---------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    attn = aa.AmagoFlashAttention()
    with pytest.raises(ValueError, match="qkv"):
        attn(torch.zeros(2, 4, 2, 8))
    with pytest.raises(TypeError, match="qkv"):
        attn([1, 2, 3])
    qkv = _qkv(2, 1, 2, 8)
    good = _nan_cache(2, 8, 2, 8)
    with pytest.raises(ValueError, match="key_cache"):
        attn(qkv, key_cache=_nan_cache(2, 8, 3, 8), val_cache=good, cache_seqlens=torch.zeros(2, dtype=torch.int32))
    with pytest.raises(ValueError, match="cache_seqlens"):
        attn(qkv, key_cache=good, val_cache=good.clone(), cache_seqlens=torch.tensor([0, 8], dtype=torch.int32))
    with pytest.raises(ValueError, match="cache_seqlens"):
        attn(qkv, key_cache=good, val_cache=good.clone(), cache_seqlens=torch.zeros(3, dtype=torch.int32))
    with pytest.raises(TypeError, match="cache_seqlens"):
        attn(qkv, key_cache=good, val_cache=good.clone(), cache_seqlens=torch.zeros(2))
    with pytest.raises(ValueError, match="dropout"):
        aa.AmagoFlashAttention(dropout=1.5)
    with pytest.raises(ValueError, match="window_size"):
        aa.AmagoFlashAttention(window_size=(2,))

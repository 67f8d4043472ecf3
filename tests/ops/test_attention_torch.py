"""The PyTorch backend and the reference: masks, training attention, cache decode, ring."""

from __future__ import annotations

import pytest
import torch

from amago_fast import flash_attn_func, flash_attn_qkvpacked_func, flash_attn_with_kvcache
from amago_fast.ops import reference as R


def max_err(a, b):
    return (a.double() - b.double()).abs().max().item()


WINDOWS = [(-1, -1), (3, -1), (-1, 2), (2, 1), (0, 0)]


def _mask_loop(lq, lk, causal, window):
    """The mask spelled out element by element (bottom-right aligned queries)."""
    left, right = window
    if causal:
        right = 0
    m = torch.zeros(lq, lk, dtype=torch.bool)
    for i in range(lq):
        p = i + lk - lq
        for j in range(lk):
            m[i, j] = (right < 0 or j <= p + right) and (left < 0 or j >= p - left)
    return m


@pytest.mark.parametrize("lq,lk", [(1, 1), (5, 5), (3, 8), (8, 3)])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("window", WINDOWS)
def test_reference_mask_matches_loop(lq, lk, causal, window):
    mask = R.attention_mask(*R.training_positions(1, lq, lk, torch.device("cpu")), causal, window)
    assert torch.equal(mask[0], _mask_loop(lq, lk, causal, window))


@pytest.mark.parametrize("lq,lk", [(1, 1), (17, 17), (5, 23), (23, 5)], ids=str)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("window", WINDOWS, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_torch_path_matches_reference(seeded, flash_rule, lq, lk, causal, window, dtype):
    q = torch.randn(2, lq, 2, 16, dtype=dtype, requires_grad=True)
    k = torch.randn(2, lk, 2, 16, dtype=dtype, requires_grad=True)
    v = torch.randn(2, lk, 2, 16, dtype=dtype, requires_grad=True)
    do = torch.randn(2, lq, 2, 16, dtype=dtype)
    out = flash_attn_func(q, k, v, causal=causal, window_size=window, backend="torch")
    grads = torch.autograd.grad(out, (q, k, v), do)
    q64, k64, v64 = (x.detach().double().requires_grad_() for x in (q, k, v))
    ref = R.attention_ref(q64, k64, v64, causal, window)
    ref_grads = torch.autograd.grad(ref, (q64, k64, v64), do.double())
    ref_lp = R.attention_ref(q, k, v, causal, window, upcast=False)
    ref_lp_grads = torch.autograd.grad(ref_lp, (q, k, v), do)
    atol = 1e-5 if dtype == torch.float32 else 2e-2
    flash_rule("out", out, ref, ref_lp, atol)
    for name, g, gr, gl in zip("qkv", grads, ref_grads, ref_lp_grads):
        assert torch.isfinite(g).all()
        flash_rule(f"d{name}", g, gr, gl, atol)


def test_fully_masked_rows_are_zero_with_zero_grad(seeded):
    # causal with Lq > Lk: the first Lq - Lk queries see nothing.
    q = torch.randn(1, 6, 1, 16, requires_grad=True)
    k = torch.randn(1, 2, 1, 16)
    v = torch.randn(1, 2, 1, 16)
    out = flash_attn_func(q, k, v, causal=True, backend="torch")
    assert torch.all(out[:, :4] == 0) and torch.all(out[:, 4:] != 0)
    (g,) = torch.autograd.grad(out.sum(), q)
    assert torch.all(g[:, :4] == 0)


def test_qkvpacked_matches_unpacked(seeded):
    qkv = torch.randn(2, 9, 3, 2, 32, requires_grad=True)
    out = flash_attn_qkvpacked_func(qkv, causal=True, backend="torch")
    ref = R.attention_ref(*qkv.unbind(2), causal=True)
    assert max_err(out, ref) < 1e-5
    out.sum().backward()
    assert qkv.grad is not None and qkv.grad.shape == qkv.shape


def test_dropout_on_torch_path(seeded):
    q, k, v = (torch.randn(1, 32, 2, 16) for _ in range(3))
    a = flash_attn_func(q, k, v, dropout_p=0.5, causal=True)
    b = flash_attn_func(q, k, v, dropout_p=0.0, causal=True)
    assert a.shape == b.shape and not torch.allclose(a, b)


def test_default_scale_and_explicit_scale(seeded):
    q, k, v = (torch.randn(1, 7, 1, 16) for _ in range(3))
    out = flash_attn_func(q, k, v, softmax_scale=0.1)
    assert max_err(out, R.attention_ref(q, k, v, softmax_scale=0.1)) < 1e-6
    assert max_err(flash_attn_func(q, k, v), R.attention_ref(q, k, v, softmax_scale=0.25)) < 1e-6


# ---------------------------------------------------------------- decode with a cache


@pytest.mark.parametrize("ring", [False, True])
@pytest.mark.parametrize("lq,lnew", [(1, 1), (1, 0), (3, 3), (2, 4)], ids=str)
@pytest.mark.parametrize("causal,window", [(False, (-1, -1)), (True, (-1, -1)), (True, (4, -1))], ids=str)
def test_decode_matches_reference(seeded, ring, lq, lnew, causal, window):
    b, lmax, h, d = 4, 12, 2, 16
    # Per-row lengths: empty, partial, exactly full after the append, and (ring) wrapped.
    seqlens = [0, 5, lmax - lnew, 30 if ring else lmax - lnew - 1]
    cache_seqlens = torch.tensor(seqlens, dtype=torch.int32)
    q = torch.randn(b, lq, h, d)
    k_cache, v_cache = torch.randn(b, lmax, h, d), torch.randn(b, lmax, h, d)
    k = torch.randn(b, lnew, h, d) if lnew else None
    v = torch.randn(b, lnew, h, d) if lnew else None
    out_ref, kc_ref, vc_ref = R.kvcache_ref(
        q, k_cache, v_cache, k, v, cache_seqlens, causal=causal, window_size=window, ring=ring
    )
    kc, vc = k_cache.clone(), v_cache.clone()
    out = flash_attn_with_kvcache(
        q, kc, vc, k, v, cache_seqlens, causal=causal, window_size=window, ring=ring, backend="torch"
    )
    assert torch.equal(kc, kc_ref) and torch.equal(vc, vc_ref)
    assert torch.equal(cache_seqlens, torch.tensor(seqlens, dtype=torch.int32))  # caller increments
    assert max_err(out, out_ref) < 1e-5
    if lnew == 0:
        assert torch.all(out[0] == 0)  # empty row, nothing appended: zeros


def test_decode_no_seqlens_means_full_cache(seeded):
    q, kc, vc = torch.randn(2, 1, 2, 16), torch.randn(2, 6, 2, 16), torch.randn(2, 6, 2, 16)
    out = flash_attn_with_kvcache(q, kc, vc)
    assert max_err(out, R.attention_ref(q, kc, vc)) < 1e-5


@pytest.mark.parametrize("ring", [False, True])
def test_stepwise_decode_equals_training_attention(seeded, ring):
    """Rolling out one token at a time must reproduce causal attention over the history;
    in ring mode, with a sliding window of the last Lmax tokens (the tokens the ring holds).
    This checks the cache logic against an independent formulation, not the shared mask."""
    b, t_total, lmax, h, d = 3, 23, 8 if ring else 23, 2, 16
    starts = [0, 2, 5]  # rows start at different time steps (per-row lengths)
    q, k, v = (torch.randn(b, t_total, h, d) for _ in range(3))
    window = (lmax - 1, -1) if ring else (-1, -1)
    kc, vc = torch.zeros(b, lmax, h, d), torch.zeros(b, lmax, h, d)
    seqlens = torch.zeros(b, dtype=torch.int32)
    for t in range(t_total):
        active = [i for i in range(b) if t >= starts[i]]
        idx = torch.tensor(active)
        # Inactive rows still step but on a copy, so their caches stay untouched.
        qs = torch.stack([q[i, t - starts[i]] for i in active])[:, None]  # (b', 1, H, D)
        ks = torch.stack([k[i, t - starts[i]] for i in active])[:, None]
        vs = torch.stack([v[i, t - starts[i]] for i in active])[:, None]
        kc_a, vc_a = kc[idx], vc[idx]
        out = flash_attn_with_kvcache(qs, kc_a, vc_a, ks, vs, seqlens[idx], causal=True, ring=ring)
        kc[idx], vc[idx] = kc_a, vc_a
        seqlens[idx] += 1
        for row, i in enumerate(active):
            n = t - starts[i] + 1
            ref = R.attention_ref(q[i : i + 1, :n], k[i : i + 1, :n], v[i : i + 1, :n], True, window)
            assert max_err(out[row, 0], ref[0, -1]) < 1e-5, (t, i)


@pytest.mark.parametrize("ring", [False, True])
def test_decode_ignores_nan_in_unwritten_slots(seeded, ring):
    """AMAGO initialises caches with NaN; slots past a row's length must never leak in."""
    b, lmax, h, d = 3, 10, 2, 16
    seqlens = torch.tensor([0, 4, 12 if ring else 9], dtype=torch.int32)
    q, k, v = (torch.randn(b, 1, h, d) for _ in range(3))
    clean_k, clean_v = torch.randn(b, lmax, h, d), torch.randn(b, lmax, h, d)
    nan_k, nan_v = clean_k.clone(), clean_v.clone()
    for row, n in enumerate(seqlens.tolist()):
        nan_k[row, n:], nan_v[row, n:] = float("nan"), float("nan")  # never written
    ref, _, _ = R.kvcache_ref(q, clean_k, clean_v, k, v, seqlens, causal=True, ring=ring)
    out = flash_attn_with_kvcache(q, nan_k, nan_v, k, v, seqlens, causal=True, ring=ring, backend="torch")
    assert torch.isfinite(out).all()
    assert max_err(out, ref) < 1e-5


@pytest.mark.parametrize("causal", [False, True])
def test_cpu_bf16_under_autocast_attends_in_fp32(causal):
    """bf16 inputs on CPU (autocast) are attended in fp32 and returned as bf16: the result
    equals the fp32 computation rounded once, forward and backward."""
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 13, 2, 8, generator=g).bfloat16().requires_grad_() for _ in range(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = flash_attn_func(q, k, v, causal=causal)
    assert out.dtype == torch.bfloat16
    q32, k32, v32 = (x.detach().float().requires_grad_() for x in (q, k, v))
    ref = flash_attn_func(q32, k32, v32, causal=causal)
    assert torch.equal(out.float(), ref.bfloat16().float())
    out.float().sum().backward()
    ref.sum().backward()
    for a, b in ((q, q32), (k, k32), (v, v32)):
        assert max_err(a.grad, b.grad) < 0.05

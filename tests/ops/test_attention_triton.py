"""Triton kernels on CPU through the interpreter (TRITON_INTERPRET=1, set in tests/conftest.py
before Triton compiles anything when there is no GPU), compared with the reference under flash-attn's rule.

The interpreter has no bf16 and is slow, so shapes are tiny and each head dim gets a
subset of the (length, causal, window, dtype) grid; together they cover every odd length.
"""

from __future__ import annotations

import os

import pytest
import torch

pytest.importorskip("triton")
if os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
    pytest.skip("interpreter tests: TRITON_INTERPRET is off (a GPU is present)", allow_module_level=True)

from amago_fast import flash_attn_func, flash_attn_qkvpacked_func, flash_attn_with_kvcache  # noqa: E402
from amago_fast.ops.reference import attention_ref, kvcache_ref  # noqa: E402

F32, F16 = torch.float32, torch.float16
# (headdim, seqlen_q, seqlen_k, causal, window, dtype)
TRAIN_CASES = [
    (16, 1, 1, False, (-1, -1), F32),
    (16, 17, 17, True, (-1, -1), F32),
    (16, 97, 97, False, (5, 3), F16),
    (16, 129, 129, True, (-1, -1), F16),
    (32, 127, 127, True, (-1, -1), F16),
    (32, 17, 17, False, (-1, -1), F32),
    (32, 97, 97, True, (16, -1), F32),
    (32, 17, 40, True, (-1, -1), F32),  # fewer queries than keys: bottom-right causal
    (32, 40, 17, True, (-1, -1), F16),  # more queries than keys: leading rows see nothing
    (64, 129, 129, True, (-1, -1), F32),
    (64, 17, 17, False, (0, 0), F16),
    (64, 33, 97, False, (-1, 8), F32),
    (128, 97, 97, True, (-1, -1), F16),
    (128, 1, 1, True, (-1, -1), F16),
    (128, 17, 17, False, (2, -1), F32),
]


def _case_id(c):
    d, lq, lk, causal, w, dt = c
    return f"d{d}-q{lq}-k{lk}-{'causal' if causal else 'full'}-w{w[0]}_{w[1]}-{str(dt)[6:]}"


@pytest.mark.parametrize("case", TRAIN_CASES, ids=[_case_id(c) for c in TRAIN_CASES])
def test_training_fwd_bwd_matches_reference(seeded, flash_rule, case):
    d, lq, lk, causal, window, dtype = case
    b, h = 2, 2
    q = torch.randn(b, lq, h, d, dtype=dtype, requires_grad=True)
    k = torch.randn(b, lk, h, d, dtype=dtype, requires_grad=True)
    v = torch.randn(b, lk, h, d, dtype=dtype, requires_grad=True)
    do = torch.randn(b, lq, h, d, dtype=dtype)
    tri = flash_attn_func(q, k, v, causal=causal, window_size=window, backend="triton")
    tri_grads = torch.autograd.grad(tri, (q, k, v), do)
    x64 = [x.detach().double().requires_grad_() for x in (q, k, v)]
    ref = attention_ref(*x64, causal=causal, window_size=window)
    ref_grads = torch.autograd.grad(ref, x64, do.double())
    x_lp = [x.detach().clone().requires_grad_() for x in (q, k, v)]
    ref_lp = attention_ref(*x_lp, causal=causal, window_size=window, upcast=False)
    lp_grads = torch.autograd.grad(ref_lp, x_lp, do)
    atol = 1e-5 if dtype == F32 else 2e-3
    flash_rule("out", tri, ref, ref_lp, atol)
    for name, g, gr, gl in zip(("dq", "dk", "dv"), tri_grads, ref_grads, lp_grads):
        assert g.shape == gr.shape and g.dtype == dtype
        flash_rule(name, g, gr, gl, atol)


def test_qkvpacked_strided_views_and_scale(seeded):
    qkv = torch.randn(1, 45, 3, 2, 32, requires_grad=True)
    tri = flash_attn_qkvpacked_func(qkv, softmax_scale=0.3, causal=True, backend="triton")
    ref = attention_ref(*qkv.unbind(2), causal=True, softmax_scale=0.3)
    assert (tri - ref).abs().max() < 1e-5
    (g,) = torch.autograd.grad(tri.square().sum(), qkv)
    (g_ref,) = torch.autograd.grad(ref.square().sum(), qkv)
    assert (g - g_ref).abs().max() < 1e-4


def test_empty_rows_zero_output_and_grad(seeded):
    q = torch.randn(1, 20, 1, 16, requires_grad=True)
    k, v = torch.randn(1, 3, 1, 16), torch.randn(1, 3, 1, 16)
    out = flash_attn_func(q, k, v, causal=True, backend="triton")
    assert torch.all(out[:, :17] == 0) and torch.isfinite(out).all()
    (g,) = torch.autograd.grad(out.sum(), q)
    assert torch.all(g[:, :17] == 0) and torch.isfinite(g).all()


# (headdim, seqlen_q, seqlen_new, ring, causal, window, dtype)
DECODE_CASES = [
    (16, 1, 1, False, True, (-1, -1), F32),
    (32, 1, 1, True, True, (-1, -1), F16),
    (32, 1, 0, False, False, (-1, -1), F32),
    (64, 3, 3, True, True, (-1, -1), F32),
    (64, 1, 1, False, True, (20, -1), F16),
    (128, 2, 2, False, True, (-1, -1), F32),
    (128, 1, 1, True, False, (9, -1), F32),
]


@pytest.mark.parametrize(
    "case",
    DECODE_CASES,
    ids=[f"d{c[0]}-q{c[1]}-new{c[2]}-{'ring' if c[3] else 'linear'}-w{c[5][0]}" for c in DECODE_CASES],
)
def test_decode_matches_reference(seeded, flash_rule, case):
    d, lq, lnew, ring, causal, window, dtype = case
    b, h, lmax = 4, 2, 97
    # Per-row lengths: empty, short, full after the append, and (ring) wrapped twice over.
    lens = [0, 17, lmax - lnew, 2 * lmax + 5 if ring else 60]
    seqlens = torch.tensor(lens, dtype=torch.int32)
    q = torch.randn(b, lq, h, d, dtype=dtype)
    kc, vc = torch.randn(b, lmax, h, d, dtype=dtype), torch.randn(b, lmax, h, d, dtype=dtype)
    k = torch.randn(b, lnew, h, d, dtype=dtype) if lnew else None
    v = torch.randn(b, lnew, h, d, dtype=dtype) if lnew else None
    ref, kc_ref, vc_ref = kvcache_ref(
        q.double(),
        kc.double(),
        vc.double(),
        None if k is None else k.double(),
        None if v is None else v.double(),
        seqlens,
        causal=causal,
        window_size=window,
        ring=ring,
    )
    ref_lp, _, _ = kvcache_ref(q, kc, vc, k, v, seqlens, causal=causal, window_size=window, ring=ring, upcast=False)
    tri = flash_attn_with_kvcache(
        q, kc, vc, k, v, seqlens, causal=causal, window_size=window, ring=ring, backend="triton"
    )
    assert torch.equal(kc.double(), kc_ref) and torch.equal(vc.double(), vc_ref)
    flash_rule("out", tri, ref, ref_lp, 1e-5 if dtype == F32 else 2e-3)
    if lnew == 0:
        assert torch.all(tri[0] == 0)


@pytest.mark.parametrize("splits", [1, 3, 7])
def test_decode_split_merge_is_exact(seeded, splits):
    from amago_fast.kernels.attention_decode import attention_decode

    q, kc, vc = torch.randn(3, 1, 2, 32), torch.randn(3, 129, 2, 32), torch.randn(3, 129, 2, 32)
    seqlens_k = torch.tensor([1, 129, 250], dtype=torch.int32)  # row 2 is a wrapped ring
    out = attention_decode(q, kc, vc, seqlens_k, 32**-0.5, True, (-1, -1), True, num_splits=splits)
    ref, _, _ = kvcache_ref(q, kc, vc, None, None, seqlens_k, causal=True, ring=True)
    assert (out - ref).abs().max() < 1e-5


def test_ring_rollout_equals_sliding_window_attention(seeded):
    """Acting token by token with a ring cache == causal attention over the last Lmax tokens."""
    b, t_total, lmax, h, d = 2, 40, 16, 2, 16
    q, k, v = (torch.randn(b, t_total, h, d) for _ in range(3))
    kc, vc = torch.zeros(b, lmax, h, d), torch.zeros(b, lmax, h, d)
    seqlens = torch.zeros(b, dtype=torch.int32)
    outs = []
    for t in range(t_total):
        sl = slice(t, t + 1)
        outs.append(
            flash_attn_with_kvcache(
                q[:, sl], kc, vc, k[:, sl], v[:, sl], seqlens, causal=True, ring=True, backend="triton"
            )
        )
        seqlens += 1
    ref = attention_ref(q, k, v, causal=True, window_size=(lmax - 1, -1))
    assert (torch.cat(outs, 1) - ref).abs().max() < 1e-5


def test_triton_ops_under_torch_compile(seeded):
    torch._dynamo.reset()
    qkv = torch.randn(1, 19, 3, 2, 16, requires_grad=True)

    def f(x):
        return flash_attn_qkvpacked_func(x, causal=True, backend="triton") * 2.0

    out = torch.compile(f, backend="aot_eager", fullgraph=True)(qkv)
    ref = attention_ref(*qkv.unbind(2), causal=True) * 2.0
    assert (out - ref).abs().max() < 1e-5
    (g,) = torch.autograd.grad(out.sum(), qkv)
    (g_ref,) = torch.autograd.grad(ref.sum(), qkv)
    assert (g - g_ref).abs().max() < 1e-4


def test_custom_ops_pass_opcheck(seeded):
    from amago_fast.ops import _triton_ops as T

    q, k, v = (torch.randn(1, 9, 1, 16, requires_grad=True) for _ in range(3))
    torch.library.opcheck(T._fwd, (q, k, v, 0.25, True, -1, -1), test_utils=("test_schema", "test_faketensor"))
    seqlens = torch.tensor([5], dtype=torch.int32)
    torch.library.opcheck(T._decode, (q[:, :1].detach(), k.detach(), v.detach(), seqlens, 0.25, True, -1, -1, False))
    kc, vc = torch.zeros(1, 9, 1, 16), torch.zeros(1, 9, 1, 16)
    torch.library.opcheck(T._kv_append, (q[:, :2].detach(), q[:, :2].detach(), kc, vc, seqlens, True))


@pytest.mark.parametrize("block_m,block_n", [(16, 64), (64, 16), (32, 32)], ids=str)
def test_block_shapes_edge_and_interior_blocks(seeded, monkeypatch, block_m, block_n):
    """The kernels split each band into masked edge blocks and unmasked interior blocks;
    the split depends on the tile shape, so force several (square, tall, wide) and check
    causal, windowed and Lq != Lk cases against the reference, outputs and gradients."""
    import triton

    from amago_fast.kernels import attention_bwd, attention_fwd

    cfg = [triton.Config({"BLOCK_M": block_m, "BLOCK_N": block_n}, num_warps=4, num_stages=1)]
    for kern in (attention_fwd._attn_fwd, attention_bwd._bwd_dkdv, attention_bwd._bwd_dq):
        monkeypatch.setattr(kern, "configs", cfg)
    cases = [
        (100, 100, True, (-1, -1)),
        (37, 100, True, (20, -1)),
        (100, 37, False, (9, 40)),
        (100, 100, False, (-1, 0)),
        (64, 64, True, (31, -1)),
    ]
    for lq, lk, causal, window in cases:
        x = [torch.randn(1, n, 1, 16, requires_grad=True) for n in (lq, lk, lk)]
        do = torch.randn(1, lq, 1, 16)
        tri = flash_attn_func(*x, causal=causal, window_size=window, backend="triton")
        ref = attention_ref(*x, causal=causal, window_size=window)
        assert (tri - ref).abs().max() < 1e-5, (lq, lk, causal, window)
        for g, gr in zip(torch.autograd.grad(tri, x, do), torch.autograd.grad(ref, x, do)):
            assert (g - gr).abs().max() < 1e-4, (lq, lk, causal, window)


def test_tuning_space_prunes_per_head_dim_and_precision(monkeypatch):
    """On a GPU, autotuning sees only the tiles listed for the head dim (fp32: its own)."""
    from amago_fast.kernels import _common

    monkeypatch.setattr(_common, "interpreting", lambda: False)
    table = {32: [(128, 64, 4, 3), (64, 64, 4, 3)], 128: [(64, 32, 8, 2)], "fp32": [(32, 32, 8, 1)]}
    configs, prune = _common.tuning_space(table, 16, 16)
    assert len(configs) == 4

    def shapes(cfgs):
        return {(c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"], c.num_warps, c.num_stages) for c in cfgs}

    assert shapes(prune(configs, {}, HEAD_DIM=16, DOT_PREC="tf32")) == set(table[32])
    assert shapes(prune(configs, {}, HEAD_DIM=64, DOT_PREC="tf32")) == set(table[128])
    assert shapes(prune(configs, {}, HEAD_DIM=128, DOT_PREC="tf32")) == set(table[128])
    assert shapes(prune(configs, {}, HEAD_DIM=32, DOT_PREC="ieee")) == set(table["fp32"])


@pytest.mark.parametrize("ring", [False, True])
def test_decode_never_reads_unwritten_slots(seeded, ring):
    """NaN in never-written slots (AMAGO's cache init) must not reach the output."""
    b, lmax, h, d = 3, 40, 1, 16
    seqlens = torch.tensor([0, 17, 45 if ring else 39], dtype=torch.int32)
    q, k, v = (torch.randn(b, 1, h, d) for _ in range(3))
    clean_k, clean_v = torch.randn(b, lmax, h, d), torch.randn(b, lmax, h, d)
    nan_k, nan_v = clean_k.clone(), clean_v.clone()
    for row, n in enumerate(seqlens.tolist()):
        nan_k[row, n:], nan_v[row, n:] = float("nan"), float("nan")
    ref, _, _ = kvcache_ref(q, clean_k, clean_v, k, v, seqlens, causal=True, ring=ring)
    out = flash_attn_with_kvcache(q, nan_k, nan_v, k, v, seqlens, causal=True, ring=ring, backend="triton")
    assert torch.isfinite(out).all() and (out - ref).abs().max() < 1e-5


def test_triton_decode_under_torch_compile(seeded):
    """The in-place append is a mutating custom op: it must survive functionalization."""
    torch._dynamo.reset()
    q, k, v = (torch.randn(2, 1, 2, 16) for _ in range(3))
    kc, vc = torch.randn(2, 8, 2, 16), torch.randn(2, 8, 2, 16)
    seqlens = torch.tensor([3, 11], dtype=torch.int32)
    ref, kc_ref, vc_ref = kvcache_ref(q, kc, vc, k, v, seqlens, causal=True, ring=True)
    step = torch.compile(flash_attn_with_kvcache, backend="aot_eager")
    out = step(q, kc, vc, k, v, seqlens, causal=True, ring=True, backend="triton")
    assert (out - ref).abs().max() < 1e-5
    assert torch.equal(kc, kc_ref) and torch.equal(vc, vc_ref)

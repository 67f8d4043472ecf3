"""The Triton kernels compiled for a real GPU (bf16 included, autotuned tiles, larger
shapes) against the fp64 reference. Skipped without CUDA; marked ``gpu`` so CI's default
``-m 'not gpu'`` leaves them out: run them with ``pytest -m gpu tests/ops``."""

from __future__ import annotations

import os

import pytest
import torch

from amago_fast import flash_attn_func, flash_attn_with_kvcache
from amago_fast.ops.reference import attention_ref, kvcache_ref

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.skipif(
        os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"),
        reason="TRITON_INTERPRET is set: kernels would run in the interpreter",
    ),
]
BF16, F16, F32 = torch.bfloat16, torch.float16, torch.float32


@pytest.mark.parametrize("dtype", [BF16, F16, F32], ids=str)
@pytest.mark.parametrize("d", [16, 32, 64, 128])
@pytest.mark.parametrize("lq,lk", [(1, 1), (17, 17), (127, 127), (129, 129), (1000, 1000), (113, 2048), (2048, 2048)])
@pytest.mark.parametrize("causal,window", [(False, (-1, -1)), (True, (-1, -1)), (True, (256, -1))], ids=str)
def test_gpu_fwd_bwd(flash_rule, dtype, d, lq, lk, causal, window):
    torch.manual_seed(0)
    x = [torch.randn(2, n, 4, d, device="cuda", dtype=dtype, requires_grad=True) for n in (lq, lk, lk)]
    do = torch.randn(2, lq, 4, d, device="cuda", dtype=dtype)
    tri = flash_attn_func(*x, causal=causal, window_size=window, backend="triton")
    tri_g = torch.autograd.grad(tri, x, do)
    x64 = [t.detach().double().requires_grad_() for t in x]
    ref = attention_ref(*x64, causal=causal, window_size=window)
    ref_g = torch.autograd.grad(ref, x64, do.double())
    x_lp = [t.detach().clone().requires_grad_() for t in x]
    lp = attention_ref(*x_lp, causal=causal, window_size=window, upcast=False)
    lp_g = torch.autograd.grad(lp, x_lp, do)
    atol = 1e-5 if dtype == F32 else 1e-3
    flash_rule("out", tri, ref, lp, atol)
    for name, g, gr, gl in zip(("dq", "dk", "dv"), tri_g, ref_g, lp_g):
        flash_rule(name, g, gr, gl, atol)


@pytest.mark.parametrize("dtype", [BF16, F16], ids=str)
@pytest.mark.parametrize("d", [32, 64, 128])
@pytest.mark.parametrize("ring", [False, True])
def test_gpu_decode(flash_rule, dtype, d, ring):
    torch.manual_seed(0)
    b, h, lmax = 6, 4, 3000
    seqlens = torch.tensor([0, 1, 17, 1500, lmax - 1, 7000 if ring else 2500], dtype=torch.int32, device="cuda")
    mk = lambda *s: torch.randn(*s, device="cuda", dtype=dtype)  # noqa: E731
    q, k, v, kc, vc = mk(b, 1, h, d), mk(b, 1, h, d), mk(b, 1, h, d), mk(b, lmax, h, d), mk(b, lmax, h, d)
    ref, kc_ref, vc_ref = kvcache_ref(
        q.double(), kc.double(), vc.double(), k.double(), v.double(), seqlens, causal=True, ring=ring
    )
    lp, _, _ = kvcache_ref(q, kc, vc, k, v, seqlens, causal=True, ring=ring, upcast=False)
    tri = flash_attn_with_kvcache(q, kc, vc, k, v, seqlens, causal=True, ring=ring, backend="triton")
    assert torch.equal(kc.double(), kc_ref) and torch.equal(vc.double(), vc_ref)
    flash_rule("out", tri, ref, lp, 1e-3)


def test_gpu_inductor_compile(flash_rule):
    torch._dynamo.reset()
    qkv = torch.randn(2, 300, 3, 4, 64, device="cuda", dtype=BF16, requires_grad=True)
    from amago_fast import flash_attn_qkvpacked_func

    f = torch.compile(lambda x: flash_attn_qkvpacked_func(x, causal=True).float().square().mean(), fullgraph=True)
    loss = f(qkv)
    (g,) = torch.autograd.grad(loss, qkv)
    ref = attention_ref(*qkv.unbind(2), causal=True).float().square().mean()
    (g_ref,) = torch.autograd.grad(ref, qkv)
    assert abs(loss.item() - ref.item()) < 1e-2 and (g - g_ref).abs().max() < 1e-2

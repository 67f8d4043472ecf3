"""The public ops under torch.compile (eager/aot_eager backends: fast, no C compiler)."""

from __future__ import annotations

import pytest
import torch

from amago_fast import flash_attn_qkvpacked_func, flash_attn_with_kvcache
from amago_fast.ops.reference import attention_ref, kvcache_ref


@pytest.mark.parametrize("compile_backend", ["eager", "aot_eager"])
def test_compiled_training_attention_torch_path(compile_backend):
    torch._dynamo.reset()
    torch.manual_seed(0)
    qkv = torch.randn(2, 11, 3, 2, 16, requires_grad=True)

    def f(x):
        return flash_attn_qkvpacked_func(x, causal=True, window_size=(4, -1), backend="torch").sum(-1)

    out = torch.compile(f, backend=compile_backend, fullgraph=True)(qkv)
    ref = attention_ref(*qkv.unbind(2), causal=True, window_size=(4, -1)).sum(-1)
    assert (out - ref).abs().max() < 1e-5
    (g,) = torch.autograd.grad(out.sum(), qkv)
    (g_ref,) = torch.autograd.grad(ref.sum(), qkv)
    assert (g - g_ref).abs().max() < 1e-5


def test_compiled_decode_torch_path():
    torch._dynamo.reset()
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 1, 2, 16) for _ in range(3))
    kc, vc = torch.randn(3, 5, 2, 16), torch.randn(3, 5, 2, 16)
    seqlens = torch.tensor([0, 4, 9], dtype=torch.int32)
    ref, kc_ref, _ = kvcache_ref(q, kc, vc, k, v, seqlens, causal=True, ring=True)
    step = torch.compile(flash_attn_with_kvcache, backend="eager")
    out = step(q, kc, vc, k, v, seqlens, causal=True, ring=True, backend="torch")
    assert (out - ref).abs().max() < 1e-5 and torch.equal(kc, kc_ref)

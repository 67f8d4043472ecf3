"""Attention benchmarks (pytest-benchmark).

GPU suite (skipped without CUDA): causal training attention forward and forward+backward,
and one-token decode over a cache, at AMAGO shapes (B 24, H 8, D 32/64, bf16), for
amago_fast's Triton kernels vs torch SDPA (flash / cuDNN backends) vs a naive
implementation. Each result carries TFLOP/s or GB/s in ``extra_info``:

- causal forward FLOPs = 2 * B * H * L * L * D (two matmuls, half the square);
  backward = 2.5 x forward, so forward+backward = 3.5 x forward;
- decode bytes = the K and V cache rows read: 2 * B * n * H * D * itemsize.

Lengths come from $AMAGO_BENCH_ATTN_L (comma list, default 512,1024,2048,4096,8192).
Render a table: ``pytest benchmarks/bench_attention.py --benchmark-json=a.json`` then
``python benchmarks/attention_table.py a.json``.

CPU suite (always runs, tiny): the PyTorch backend vs the naive reference, so the file
has something to exercise in CI with --benchmark-disable.
"""

from __future__ import annotations

import os

import pytest
import torch

from amago_fast import flash_attn_func, flash_attn_with_kvcache
from amago_fast.ops.reference import attention_ref

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="GPU benchmarks need a CUDA device")
LENGTHS = [int(x) for x in os.environ.get("AMAGO_BENCH_ATTN_L", "512,1024,2048,4096,8192").split(",")]
B, H = 24, 8
NAIVE_MAX_L = 2048  # the naive version materialises B*H*L*L scores: beyond this it OOMs or crawls


def _sdpa(backend_name):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = {"sdpa_flash": SDPBackend.FLASH_ATTENTION, "sdpa_cudnn": SDPBackend.CUDNN_ATTENTION}[backend_name]

    def fn(q, k, v):
        with sdpa_kernel(backend):
            out = torch.nn.functional.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
            )
        return out.transpose(1, 2)

    return fn


IMPLS = {
    "amago_triton": lambda q, k, v: flash_attn_func(q, k, v, causal=True, backend="triton"),
    "sdpa_flash": None,  # filled lazily (needs torch.nn.attention)
    "sdpa_cudnn": None,
    "naive": lambda q, k, v: attention_ref(q, k, v, causal=True, upcast=False),
}


def _impl(name):
    return IMPLS[name] or _sdpa(name)


def _timed(benchmark, fn, flops=None, nbytes=None):
    def run():
        fn()
        torch.cuda.synchronize()

    benchmark.extra_info["gpu"] = torch.cuda.get_device_name()
    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=3)
    if getattr(benchmark, "stats", None) is not None:  # None under --benchmark-disable
        t = benchmark.stats.stats.median
        if flops is not None:
            benchmark.extra_info["tflops"] = round(flops / t / 1e12, 1)
        if nbytes is not None:
            benchmark.extra_info["gbps"] = round(nbytes / t / 1e9, 1)


def _inputs(L, D, requires_grad=False):
    torch.manual_seed(0)
    return [torch.randn(B, L, H, D, device="cuda", dtype=torch.bfloat16, requires_grad=requires_grad) for _ in range(3)]


def _skip_unsupported(impl_name, L, fn, args):
    if impl_name == "naive" and L > NAIVE_MAX_L:
        pytest.skip(f"naive attention skipped above L={NAIVE_MAX_L}")
    try:
        fn(*args)
    except RuntimeError as e:  # e.g. cuDNN attention not available on this GPU/build
        pytest.skip(f"{impl_name} unavailable: {str(e).splitlines()[0][:120]}")


@needs_cuda
@pytest.mark.parametrize("L", LENGTHS)
@pytest.mark.parametrize("D", [32, 64])
@pytest.mark.parametrize("impl", list(IMPLS))
def test_gpu_causal_forward(benchmark, impl, D, L):
    benchmark.group = f"fwd D={D} L={L}"
    q, k, v = _inputs(L, D)
    fn = _impl(impl)
    with torch.no_grad():
        _skip_unsupported(impl, L, fn, (q, k, v))
        _timed(benchmark, lambda: fn(q, k, v), flops=2 * B * H * L * L * D)


@needs_cuda
@pytest.mark.parametrize("L", LENGTHS)
@pytest.mark.parametrize("D", [32, 64])
@pytest.mark.parametrize("impl", list(IMPLS))
def test_gpu_causal_forward_backward(benchmark, impl, D, L):
    benchmark.group = f"fwd+bwd D={D} L={L}"
    q, k, v = _inputs(L, D, requires_grad=True)
    do = torch.randn_like(q)
    fn = _impl(impl)

    def step():
        out = fn(q, k, v)
        torch.autograd.grad(out, (q, k, v), do)

    _skip_unsupported(impl, L, lambda *a: step(), ())
    _timed(benchmark, step, flops=3.5 * 2 * B * H * L * L * D)


def _decode_impls():
    return ["amago_triton", "amago_triton_ring", "amago_torch", "naive"]


@needs_cuda
@pytest.mark.parametrize("L", LENGTHS + [32768])
@pytest.mark.parametrize("D", [32, 64])
@pytest.mark.parametrize("impl", _decode_impls())
def test_gpu_decode(benchmark, impl, D, L):
    """One acting step: each env appends one token and attends over its cache (full rows)."""
    benchmark.group = f"decode D={D} L={L}"
    torch.manual_seed(0)
    mk = lambda *s: torch.randn(*s, device="cuda", dtype=torch.bfloat16)  # noqa: E731
    q, k, v = mk(B, 1, H, D), mk(B, 1, H, D), mk(B, 1, H, D)
    kc, vc = mk(B, L, H, D), mk(B, L, H, D)
    ring = impl == "amago_triton_ring"
    # Linear caches sit one short of full; the ring is past full, where AMAGO would copy.
    seqlens = torch.full((B,), 3 * L if ring else L - 1, dtype=torch.int32, device="cuda")
    if impl == "naive":

        def fn():
            kc[:, L - 1 :] = k
            vc[:, L - 1 :] = v
            return attention_ref(q, kc, vc, upcast=False)
    else:
        backend = "torch" if impl == "amago_torch" else "triton"

        def fn():
            return flash_attn_with_kvcache(q, kc, vc, k, v, seqlens, causal=True, ring=ring, backend=backend)

    nbytes = 2 * B * L * H * D * kc.element_size()
    _timed(benchmark, fn, nbytes=nbytes)


# ------------------------------------------------------------------ CPU (always runs)
CPU_L = int(os.environ.get("AMAGO_BENCH_ATTN_CPU_L", "128"))


@pytest.mark.parametrize("impl", ["amago_torch", "naive"])
def test_cpu_causal_forward(benchmark, impl):
    benchmark.group = f"cpu fwd B=4 H=4 D=32 L={CPU_L}"
    torch.manual_seed(0)
    q, k, v = (torch.randn(4, CPU_L, 4, 32) for _ in range(3))
    if impl == "naive":
        fn = lambda: attention_ref(q, k, v, causal=True)  # noqa: E731
    else:
        fn = lambda: flash_attn_func(q, k, v, causal=True, backend="torch")  # noqa: E731
    out = benchmark(fn)
    assert out.shape == q.shape


@pytest.mark.parametrize("impl", ["amago_torch", "amago_torch_ring"])
def test_cpu_decode(benchmark, impl):
    benchmark.group = f"cpu decode B=8 H=4 D=32 Lmax={CPU_L}"
    torch.manual_seed(0)
    q, k, v = (torch.randn(8, 1, 4, 32) for _ in range(3))
    kc, vc = torch.randn(8, CPU_L, 4, 32), torch.randn(8, CPU_L, 4, 32)
    ring = impl.endswith("ring")
    seqlens = torch.full((8,), 5 * CPU_L if ring else CPU_L - 1, dtype=torch.int32)
    out = benchmark(lambda: flash_attn_with_kvcache(q, kc, vc, k, v, seqlens, causal=True, ring=ring, backend="torch"))
    assert out.shape == q.shape


@pytest.mark.parametrize("impl", ["sum_x0", "isnan_any"])
def test_cpu_nonfinite_check(benchmark, impl):
    """The torch path's NaN guard on the strided q/k/v views a packed qkv gives (AMAGO's
    training shape B=24, L=101, H=8, D=32): amago_fast's sum(x * 0) per row against the
    isnan().any() formulation it replaced."""
    from amago_fast.ops._torch_path import _nonfinite_rows

    benchmark.group = "cpu non-finite rows of q, k, v (B=24 L=101 H=8 D=32, strided views)"
    q, k, v = torch.randn(24, 101, 3, 8, 32).unbind(2)
    rows = _nonfinite_rows if impl == "sum_x0" else (lambda x: x.isnan().any(-1))

    def fn():
        return rows(q) | (rows(k) | rows(v)).any(1, keepdim=True)

    assert not benchmark(fn).any()

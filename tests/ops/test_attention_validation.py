"""Bad input raises ValueError/TypeError naming the argument, before any kernel runs."""

from __future__ import annotations

import pytest
import torch

from amago_fast import flash_attn_func, flash_attn_qkvpacked_func, flash_attn_with_kvcache
from amago_fast.ops import _checks


def _qkv(b=1, l=4, h=2, d=16, dtype=torch.float32):
    return tuple(torch.randn(b, l, h, d, dtype=dtype) for _ in range(3))


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda q, k, v: (q[0], k, v), "q must have 4 dims"),
        (lambda q, k, v: (q, k[:, :, :1], v[:, :, :1]), "k must be"),
        (lambda q, k, v: (q, k, v[:, :3]), "k and v must have the same shape"),
        (lambda q, k, v: (q, k.half(), v.half()), "k has dtype"),
        (lambda q, k, v: (q.long(), k, v), "q has unsupported dtype"),
        (lambda q, k, v: (q, k[..., :8], v[..., :8]), "k must be"),
        (lambda q, k, v: (q[:, :, :0], k[:, :, :0], v[:, :, :0]), "nheads and headdim"),
    ],
)
def test_bad_tensors(make, match):
    with pytest.raises(ValueError, match=match):
        flash_attn_func(*make(*_qkv()))


def test_not_a_tensor():
    q, k, v = _qkv()
    with pytest.raises(TypeError, match="k must be a torch.Tensor"):
        flash_attn_func(q, k.numpy(), v)
    with pytest.raises(TypeError, match="qkv"):
        flash_attn_qkvpacked_func([q, k, v])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"dropout_p": 1.0}, "dropout_p"),
        ({"dropout_p": -0.1}, "dropout_p"),
        ({"softmax_scale": float("nan")}, "softmax_scale"),
        ({"window_size": (-2, 0)}, "window_size"),
        ({"window_size": (1,)}, "window_size"),
        ({"window_size": "ab"}, "window_size"),
        ({"backend": "cuda"}, "backend"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        flash_attn_func(*_qkv(), **kwargs)


def test_bad_backend_env(monkeypatch):
    monkeypatch.setenv(_checks.BACKEND_ENV, "fast")
    with pytest.raises(ValueError, match="backend"):
        flash_attn_func(*_qkv())


def test_qkvpacked_shape():
    with pytest.raises(ValueError, match="qkv must be"):
        flash_attn_qkvpacked_func(torch.randn(1, 4, 2, 2, 16))


def test_forced_triton_rejections(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="CUDA"):
        flash_attn_func(*_qkv(), backend="triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # passes the device check, not the rest
    with pytest.raises(ValueError, match="headdim 24"):
        flash_attn_func(*_qkv(d=24), backend="triton")
    with pytest.raises(ValueError, match="dropout_p"):
        flash_attn_func(*_qkv(), dropout_p=0.1, backend="triton")


def test_auto_backend_choice():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert _checks.choose_backend("auto", cpu, 32) == "torch"
    if _checks.triton_available():
        assert _checks.choose_backend("auto", cuda, 32) == "triton"
    assert _checks.choose_backend("auto", cuda, 24) == "torch"  # odd head dim -> fallback
    assert _checks.choose_backend("auto", cuda, 32, dropout_p=0.1) == "torch"
    assert _checks.choose_backend("auto", cuda, 32, dtype=torch.float32) == "torch"  # see docstring


def _cache(b=2, lmax=6, h=2, d=16):
    q = torch.randn(b, 1, h, d)
    return q, torch.zeros(b, lmax, h, d), torch.zeros(b, lmax, h, d), torch.randn(b, 1, h, d), torch.randn(b, 1, h, d)


@pytest.mark.parametrize(
    "seqlens,ring,match",
    [
        (torch.tensor([0, 6], dtype=torch.int32), False, "cache too small"),
        (torch.tensor([-1, 0], dtype=torch.int32), False, "cache_seqlens must be >= 0"),
        (torch.tensor([0, 1, 2], dtype=torch.int32), False, "cache_seqlens must be an int32 tensor of shape"),
        (torch.tensor([0.0, 1.0]), False, "cache_seqlens must be an int32"),
        (None, False, "cache_seqlens is required"),
        (torch.tensor([-1, 0], dtype=torch.int32), True, "cache_seqlens must be >= 0"),
    ],
)
def test_bad_cache_lengths(seqlens, ring, match):
    q, kc, vc, k, v = _cache()
    with pytest.raises(ValueError, match=match):
        flash_attn_with_kvcache(q, kc, vc, k, v, cache_seqlens=seqlens, ring=ring)
    assert torch.all(kc == 0)  # nothing was written before the error


def test_bad_cache_shapes():
    q, kc, vc, k, v = _cache()
    s = torch.zeros(2, dtype=torch.int32)
    with pytest.raises(ValueError, match="k_cache must be"):
        flash_attn_with_kvcache(q, kc[:, :, :1], vc[:, :, :1], cache_seqlens=s)
    with pytest.raises(ValueError, match="k_cache and v_cache shapes differ"):
        flash_attn_with_kvcache(q, kc, vc[:, :3], cache_seqlens=s)
    with pytest.raises(ValueError, match="k and v must be given together"):
        flash_attn_with_kvcache(q, kc, vc, k, None, cache_seqlens=s)
    with pytest.raises(ValueError, match="k must be"):
        flash_attn_with_kvcache(q, kc, vc, k[:, :, :1], v[:, :, :1], cache_seqlens=s)
    with pytest.raises(ValueError, match="new tokens"):
        big = torch.randn(2, 7, 2, 16)
        flash_attn_with_kvcache(q, kc, vc, big, big, cache_seqlens=s, ring=True)
    with pytest.raises(ValueError, match="contiguous"):
        strided = torch.zeros(2, 6, 2, 32)[..., ::2]  # (2, 6, 2, 16) with headdim stride 2
        flash_attn_with_kvcache(q, strided, strided.clone()[..., :], cache_seqlens=s)


def test_mismatched_devices():
    # The meta device stands in for "another device" on a CPU-only machine.
    q, kc, vc, k, v = _cache()
    with pytest.raises(ValueError, match="k_cache is on meta"):
        flash_attn_with_kvcache(q, kc.to("meta"), vc, cache_seqlens=0)
    with pytest.raises(ValueError, match="v is on meta"):
        flash_attn_func(q, k, v.to("meta"))
    with pytest.raises(ValueError, match="cache_seqlens is on meta"):
        flash_attn_with_kvcache(q, kc, vc, cache_seqlens=torch.zeros(2, dtype=torch.int32, device="meta"))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"softcap": 30.0}, "softcap"),
        ({"alibi_slopes": torch.ones(2)}, "alibi_slopes"),
        ({"return_attn_probs": True}, "return_attn_probs"),
    ],
)
def test_flash_attn_extras_only_defaults(kwargs, match):
    with pytest.raises(ValueError, match=match):
        flash_attn_func(*_qkv(), **kwargs)
    qkv = torch.randn(1, 4, 3, 2, 16)
    with pytest.raises(ValueError, match=match):
        flash_attn_qkvpacked_func(qkv, **kwargs)
    # The defaults, passed positionally as flash-attn callers may do, are accepted.
    assert flash_attn_func(*_qkv(), 0.0, None, True, (-1, -1), 0.0, None, True, False).shape == (1, 4, 2, 16)


@pytest.mark.parametrize("causal", [False, True])
def test_torch_path_propagates_nan_instead_of_zeros(causal):
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 8, 2, 32, requires_grad=True) for _ in range(3))
    bad_q = q.detach().clone()
    bad_q[0, 3] = float("nan")
    out = flash_attn_func(bad_q, k, v, causal=causal, backend="torch")
    assert out[0, 3].isnan().all()  # the NaN query row stays NaN
    assert not out[0, :3].isnan().any()  # other rows are untouched
    bad_v = v.detach().clone()
    bad_v[0, 5, 0] = float("nan")
    out = flash_attn_func(q, k, bad_v, causal=causal, backend="torch")
    assert out[0, :, 0].isnan().all()  # a NaN value poisons its (batch, head)
    assert not out[0, :, 1].isnan().any()  # the other head is untouched


@pytest.mark.parametrize("causal", [False, True])
def test_torch_path_poisons_inf_like_nan(causal):
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 8, 2, 32) for _ in range(3))
    bad_q = q.clone()
    bad_q[0, 2, 1, 7] = float("-inf")
    out = flash_attn_func(bad_q, k, v, causal=causal, backend="torch")
    assert out[0, 2, 1].isnan().all() and not out[0, 2, 0].isnan().any()
    bad_k = k.clone()
    bad_k[0, 6, 0, 0] = float("inf")
    out = flash_attn_func(q, bad_k, v, causal=causal, backend="torch")
    assert out[0, :, 0].isnan().all() and not out[0, :, 1].isnan().any()


def test_nonfinite_rows_has_no_false_alarm_on_huge_finite_values():
    from amago_fast.ops._torch_path import _nonfinite_rows

    x = torch.full((3, 64), 3e38)  # a plain sum of any row overflows to inf
    x[1] *= -1
    x[2, 5] = float("nan")
    assert _nonfinite_rows(x).tolist() == [False, False, True]
    assert _nonfinite_rows(x.to(torch.bfloat16)).tolist() == [False, False, True]

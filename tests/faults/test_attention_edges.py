"""Edge cases of the public attention ops found by fault injection (issue 10, row H):
empty shapes behave like flash-attn, impossible arguments are ValueErrors naming them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amago_fast import _C, ReplayBuffer, flash_attn_func, flash_attn_qkvpacked_func, flash_attn_with_kvcache


def _t(*shape, grad=False):
    return torch.randn(*shape, dtype=torch.float32, requires_grad=grad)


@pytest.mark.parametrize(
    "b,lq,lk", [(0, 4, 4), (2, 0, 4), (2, 3, 0), (0, 0, 0)], ids=["batch0", "seqlen_q0", "seqlen_k0", "all0"]
)
@pytest.mark.parametrize("causal", [False, True])
def test_empty_shapes_return_empty_or_zero_outputs(b, lq, lk, causal):
    q, k, v = _t(b, lq, 2, 16, grad=True), _t(b, lk, 2, 16, grad=True), _t(b, lk, 2, 16, grad=True)
    out = flash_attn_func(q, k, v, causal=causal)
    assert out.shape == (b, lq, 2, 16) and torch.all(out == 0)  # no key: zeros (flash-attn)
    out.sum().backward()  # still differentiable: zero gradients of the right shapes
    for x in (q, k, v):
        assert x.grad.shape == x.shape and torch.all(x.grad == 0)


def test_empty_packed_and_nonfinite_inputs_still_give_zeros():
    assert flash_attn_qkvpacked_func(_t(0, 5, 3, 2, 16)).shape == (0, 5, 2, 16)
    q = torch.full((1, 3, 2, 16), float("nan"))
    out = flash_attn_func(q, _t(1, 0, 2, 16), _t(1, 0, 2, 16))
    assert torch.all(out == 0)  # nothing attended: not NaN * 0


def test_kvcache_empty_shapes():
    kc, vc = torch.zeros(0, 6, 2, 16), torch.zeros(0, 6, 2, 16)
    assert flash_attn_with_kvcache(_t(0, 1, 2, 16), kc, vc, cache_seqlens=0).shape == (0, 1, 2, 16)
    kc, vc = torch.zeros(2, 6, 2, 16), torch.zeros(2, 6, 2, 16)
    k, v = _t(2, 1, 2, 16), _t(2, 1, 2, 16)
    out = flash_attn_with_kvcache(_t(2, 0, 2, 16), kc, vc, k, v, cache_seqlens=torch.tensor([0, 3], dtype=torch.int32))
    assert out.shape == (2, 0, 2, 16)
    assert torch.equal(kc[0, 0], k[0, 0]) and torch.equal(vc[1, 3], v[1, 0])  # still appended
    empty = torch.zeros(2, 0, 2, 16)
    assert torch.all(flash_attn_with_kvcache(_t(2, 1, 2, 16), empty, empty.clone(), cache_seqlens=0) == 0)
    # seqlen_new = 0 appends nothing
    out = flash_attn_with_kvcache(_t(2, 1, 2, 16), kc, vc, k[:, :0], v[:, :0], cache_seqlens=1)
    assert out.shape == (2, 1, 2, 16)


@pytest.mark.parametrize("seqlens", [10**12, -1, 2**31])
def test_huge_int_cache_seqlens_is_a_value_error(seqlens):
    q, kc, vc = _t(2, 1, 2, 16), torch.zeros(2, 6, 2, 16), torch.zeros(2, 6, 2, 16)
    with pytest.raises(ValueError, match="cache_seqlens"):
        flash_attn_with_kvcache(q, kc, vc, cache_seqlens=seqlens)
    with pytest.raises(ValueError, match="cache_seqlens"):
        flash_attn_with_kvcache(q, kc, vc, _t(2, 1, 2, 16), _t(2, 1, 2, 16), cache_seqlens=seqlens, ring=True)
    with pytest.raises(ValueError, match="cache_seqlens"):
        flash_attn_with_kvcache(q, kc, vc, cache_seqlens=torch.full((2,), 10**12, dtype=torch.int64), ring=True)


@pytest.mark.parametrize("which", ["k_cache", "v_cache"])
def test_expanded_cache_is_refused_when_written(which):
    q, k, v = _t(3, 1, 2, 16), _t(3, 1, 2, 16), _t(3, 1, 2, 16)
    shared = torch.zeros(1, 6, 2, 16).expand(3, 6, 2, 16)  # one row aliased three times
    caches = {"k_cache": torch.zeros(3, 6, 2, 16), "v_cache": torch.zeros(3, 6, 2, 16)}
    caches[which] = shared
    with pytest.raises(ValueError, match=f"{which} is an expanded"):
        flash_attn_with_kvcache(q, caches["k_cache"], caches["v_cache"], k, v, cache_seqlens=0)
    assert torch.all(shared == 0)  # nothing was written
    # reading an expanded cache (no k/v to append) is fine and equals the real copy
    kc = torch.randn(1, 6, 2, 16).expand(3, 6, 2, 16)
    ref = flash_attn_with_kvcache(q, kc.contiguous(), kc.contiguous(), cache_seqlens=4)
    torch.testing.assert_close(flash_attn_with_kvcache(q, kc, kc, cache_seqlens=4), ref)


@pytest.mark.parametrize("scale", [-1.0, 0.0, 0, float("inf"), float("nan"), True, "1"])
def test_bad_softmax_scale(scale):
    q = _t(1, 4, 2, 16)
    with pytest.raises(ValueError, match="softmax_scale"):
        flash_attn_func(q, q, q, softmax_scale=scale)
    with pytest.raises(ValueError, match="softmax_scale"):
        flash_attn_with_kvcache(
            q[:, :1], torch.zeros(1, 6, 2, 16), torch.zeros(1, 6, 2, 16), cache_seqlens=2, softmax_scale=scale
        )


def test_all_zero_rng_state_is_refused_natively():
    store = _C.ReplayStore([4, 4, 1], [True, False, False], 10, 20, 0, 0, 0)
    before = store.rng_state
    with pytest.raises(ValueError, match="all zero"):
        store.rng_state = [0, 0, 0, 0]
    assert store.rng_state == before
    store.rng_state = [0, 0, 0, 1]  # any other state is a valid xoshiro256** state


@pytest.mark.parametrize("arg", ["traj_ids", "raw_starts"])
def test_gather_refuses_float_ids(arg):
    buf = ReplayBuffer({"x": ((2,), np.float32)}, 1, capacity=100)
    for _ in range(3):
        buf.add_trajectory(
            {"x": np.zeros((6, 2), np.float32)},
            np.zeros((6, 2), np.float32),
            np.arange(6),
            np.zeros((5, 1), np.float32),
            np.zeros(5),
            np.zeros(5, bool),
        )
    kw = {"traj_ids": [1, 2], "raw_starts": [0, 1]}
    kw[arg] = [1.7, 2.0]  # used to be truncated to [1, 2]
    with pytest.raises(TypeError, match=arg):
        buf.gather(kw["traj_ids"], kw["raw_starts"], 4)
    with pytest.raises(TypeError, match=arg):
        buf.cut_windows([buf.trajectory(1), buf.trajectory(2)], 4, **kw)
    assert buf.gather(np.array([1, 2], np.uint8), [0, 1], 4).traj_ids.tolist() == [1, 2]

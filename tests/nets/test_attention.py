import pytest
import torch

from amago_fast.nets import attention as att


@pytest.mark.parametrize("L,window", [(1, None), (17, None), (17, 5), (33, 1), (8, 8), (9, 32)], ids=str)
def test_causal_attention_matches_reference(L, window):
    torch.manual_seed(L)
    q, k, v = (torch.randn(3, L, 2, 8) for _ in range(3))
    ref = att.reference_attention(q, k, v, window)
    out = att.causal_attention(q, k, v, window)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("W", [1, 4, 7])
def test_cache_attention_ring_matches_sliding_window_reference(W):
    # Feed T tokens one by one through the ring; every output must equal the banded
    # reference over the full sequence (per-row different start offsets).
    torch.manual_seed(W)
    N, T, H, D = 3, 13, 2, 8
    q, k, v = (torch.randn(N, T, H, D) for _ in range(3))
    kc, vc = torch.zeros(N, W, H, D), torch.zeros(N, W, H, D)
    ref = att.reference_attention(q, k, v, window=W)
    for t in range(T):
        count = torch.full((N,), t, dtype=torch.int32)
        out = att.cache_attention(q[:, t : t + 1], kc, vc, k[:, t : t + 1], v[:, t : t + 1], count)
        torch.testing.assert_close(out[:, 0], ref[:, t], atol=1e-5, rtol=1e-5)


def test_cache_attention_with_per_row_counts():
    torch.manual_seed(0)
    N, W, H, D = 3, 5, 2, 8
    counts = [0, 2, 9]
    kc, vc = torch.randn(N, W, H, D), torch.randn(N, W, H, D)
    q, k, v = (torch.randn(N, 1, H, D) for _ in range(3))
    kc0, vc0 = kc.clone(), vc.clone()
    out = att.cache_attention(q, kc, vc, k, v, torch.tensor(counts, dtype=torch.int32))
    for n, c in enumerate(counts):
        slot = c % W
        torch.testing.assert_close(kc[n, slot], k[n, 0])
        keys = [k[n, 0]] + [kc0[n, j] for j in range(min(c, W)) if j != slot]
        vals = [v[n, 0]] + [vc0[n, j] for j in range(min(c, W)) if j != slot]
        ref = att.reference_attention(q[n : n + 1], torch.stack(keys)[None].flip(1), torch.stack(vals)[None].flip(1))
        torch.testing.assert_close(out[n], ref[0], atol=1e-5, rtol=1e-5)


def test_band_mask_window():
    m = att.band_mask(4, 4, 2, "cpu")
    assert m.tolist() == [
        [True, False, False, False],
        [True, True, False, False],
        [False, True, True, False],
        [False, False, True, True],
    ]


def test_public_ops_and_sdpa_paths_agree():
    pytest.importorskip("amago_fast.ops")
    torch.manual_seed(3)
    q, k, v = (torch.randn(2, 11, 2, 8) for _ in range(3))
    kc, vc = torch.randn(2, 4, 2, 8), torch.randn(2, 4, 2, 8)
    count = torch.tensor([2, 9], dtype=torch.int32)
    try:
        att.use_public_ops(False)
        sdpa = att.causal_attention(q, k, v, 5), att.cache_attention(q[:, :1], kc.clone(), vc.clone(), k[:, :1], v[:, :1], count)
        att.use_public_ops(True)
        assert att.backend_name() == "amago_fast.ops"
        ops = att.causal_attention(q, k, v, 5), att.cache_attention(q[:, :1], kc.clone(), vc.clone(), k[:, :1], v[:, :1], count)
    finally:
        att.use_public_ops(True)
    for a, b in zip(sdpa, ops):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)

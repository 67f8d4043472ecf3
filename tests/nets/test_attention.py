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


def test_cache_attention_ignores_slot_order_and_invalid_slots():
    torch.manual_seed(0)
    N, W, H, D = 4, 7, 2, 8
    q = torch.randn(N, 1, H, D)
    kc, vc = torch.randn(N, W, H, D), torch.randn(N, W, H, D)
    lens = torch.tensor([1, 3, 7, 5], dtype=torch.int32)
    out = att.cache_attention(q, kc, vc, lens)
    for n in range(N):
        m = int(lens[n])
        perm = torch.randperm(m)
        ref = att.reference_attention(q[n : n + 1], kc[n : n + 1, perm], vc[n : n + 1, perm], None)
        # one query bottom-aligned sees all m keys, in any order
        torch.testing.assert_close(out[n : n + 1], ref, atol=1e-5, rtol=1e-5)


def test_band_mask_window():
    m = att.band_mask(4, 4, 2, "cpu")
    assert m.tolist() == [
        [True, False, False, False],
        [True, True, False, False],
        [False, True, True, False],
        [False, False, True, True],
    ]

"""The encoder's attention calls against the ops' pure-PyTorch reference (amago_fast.ops.reference)."""

import pytest
import torch

from amago_fast.nets import attention as att
from amago_fast.ops.reference import attention_ref


def _ref(q, k, v, window=None):
    return attention_ref(q, k, v, causal=True, window_size=(-1, -1) if window is None else (window - 1, 0))


@pytest.mark.parametrize("L,window", [(1, None), (17, None), (17, 5), (33, 1), (8, 8), (9, 32)], ids=str)
def test_causal_attention_matches_reference(L, window):
    torch.manual_seed(L)
    q, k, v = (torch.randn(3, L, 2, 8) for _ in range(3))
    out = att.causal_attention(q, k, v, window)
    torch.testing.assert_close(
        out, _ref(q, k, v, window if window is not None and window < L else None), atol=1e-5, rtol=1e-5
    )


def test_window_one_sees_only_itself():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 6, 2, 8) for _ in range(3))
    torch.testing.assert_close(att.causal_attention(q, k, v, 1), v, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("W", [1, 4, 7])
def test_cache_attention_ring_matches_sliding_window_reference(W):
    # Feed T tokens one by one through the ring; every output must equal the banded
    # reference over the full sequence (per-row different start offsets).
    torch.manual_seed(W)
    N, T, H, D = 3, 13, 2, 8
    q, k, v = (torch.randn(N, T, H, D) for _ in range(3))
    kc, vc = torch.zeros(N, W, H, D), torch.zeros(N, W, H, D)
    ref = _ref(q, k, v, window=W)
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
        ref = attention_ref(q[n : n + 1], torch.stack(keys)[None], torch.stack(vals)[None], causal=False)
        torch.testing.assert_close(out[n], ref[0], atol=1e-5, rtol=1e-5)

import numpy as np
import pytest
import torch

from amago_fast.nets import GRUTrajEncoder, TransformerTrajEncoder

# Outputs are LayerNorm-ed (order 1). fp32 rounding differs between the one-token cache
# path and the full forward, and with BLAS thread count (seen: 3e-5 on 2 threads); a
# logic error (wrong slot, position or mask) moves outputs by 1e-2 or more.
FP32_TOL = 1e-4


def _rollout_vs_full(enc, N=4, T=23, d_in=6, reset_p=0.12, seed=0):
    """Step N envs for T steps with the cache, resetting envs independently; compare every
    output with a full forward over that env's history since its last reset."""
    g = np.random.default_rng(seed)
    x = torch.randn(N, T, d_in)
    state = enc.init_state(N, "cpu")
    start = np.zeros(N, dtype=int)  # step at which each env's current history began
    t_idx = np.zeros(N, dtype=int)
    worst = 0.0
    for t in range(T):
        if t > 0:
            resets = np.flatnonzero(g.random(N) < reset_p)
            if len(resets):
                state.reset(torch.as_tensor(resets))
                start[resets], t_idx[resets] = t, 0
        out, state = enc.step(x[:, t], torch.as_tensor(t_idx), state)
        for n in range(N):
            hist = x[n : n + 1, start[n] : t + 1]
            ti = torch.arange(hist.shape[1])[None]
            ref = enc(hist, ti)[0, -1]
            worst = max(worst, (out[n] - ref).abs().max().item())
        t_idx += 1
    return worst


@pytest.mark.parametrize("pos_emb", ["fixed", "learned", "rotary"])
@pytest.mark.parametrize("window", [64, 5], ids=["no-wrap", "ring-wraps"])
def test_kv_cache_rollout_equals_full_forward(pos_emb, window):
    torch.manual_seed(1)
    enc = TransformerTrajEncoder(6, 32, 4, 2, 48, 0.1, pos_emb, window, max_time=64).eval()
    with torch.no_grad():
        assert _rollout_vs_full(enc) < FP32_TOL


def test_gru_step_equals_full_forward():
    enc = GRUTrajEncoder(6, 16, 2, 0.0).eval()
    with torch.no_grad():
        assert _rollout_vs_full(enc) < FP32_TOL


def test_forward_is_causal_and_padding_does_not_leak():
    enc = TransformerTrajEncoder(6, 32, 4, 2, 48, 0.0, "rotary", 16, max_time=64).eval()
    x = torch.randn(2, 10, 6)
    ti = torch.arange(10).repeat(2, 1)
    y = enc(x, ti)
    x2 = x.clone()
    x2[:, 6:] = torch.randn(2, 4, 6) * 100  # change the future / the padding
    y2 = enc(x2, ti)
    torch.testing.assert_close(y[:, :6], y2[:, :6])
    assert not torch.allclose(y[:, 6:], y2[:, 6:])


@pytest.mark.parametrize("pos_emb", ["fixed", "learned", "rotary"])
def test_positions_come_from_time_idxs(pos_emb):
    # The position of a token is its env time step, not its index inside the window: the
    # same tokens at other times give other outputs, at the same times the same outputs,
    # whatever else shares the batch.
    enc = TransformerTrajEncoder(6, 32, 4, 1, 48, 0.0, pos_emb, 16, max_time=64).eval()
    x = torch.randn(1, 5, 6)
    early = torch.arange(5)[None]
    # rotary sees only distances between times, so move the times apart, not just along
    late = early * 3 if pos_emb == "rotary" else early + 10
    a, b = enc(x, early), enc(x, late)
    assert not torch.allclose(a, b, atol=1e-4)
    mixed = enc(torch.cat([x, x]), torch.cat([late, early]))
    torch.testing.assert_close(mixed[0], b[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mixed[1], a[0], atol=1e-5, rtol=1e-5)


def test_bad_config_is_a_value_error():
    with pytest.raises(ValueError, match="pos_emb"):
        TransformerTrajEncoder(6, 32, 4, 1, 48, 0.0, "alibi", 16, max_time=64)
    with pytest.raises(ValueError, match="n_heads"):
        TransformerTrajEncoder(6, 30, 4, 1, 48, 0.0, "fixed", 16, max_time=64)


def test_sigma_reparam_tracks_spectral_norm():
    from amago_fast.nets import SigmaReparamLinear

    lin = SigmaReparamLinear(12, 9)
    for _ in range(50):
        lin(torch.randn(2, 12))
    sigma = torch.dot(lin.u, lin.weight @ lin.v)
    torch.testing.assert_close(sigma, torch.linalg.matrix_norm(lin.weight, ord=2), rtol=1e-3, atol=1e-5)
    lin.eval()
    u = lin.u.clone()
    lin(torch.randn(2, 12))
    assert torch.equal(u, lin.u)  # eval forwards do not move the estimate

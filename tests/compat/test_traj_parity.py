"""amago_fast's Transformer trajectory encoder against the real AMAGO's `TformerTrajEncoder`.

Both get the same weights (`copy_traj_encoder_to_amago`: every parameter and the
sigma-reparam u, v buffers, with qkv rows, head scales and, for "fixed" positions, the
residual channels permuted into AMAGO's layout) and the same inputs. AMAGO runs
`VanillaAttention` (FlashAttention needs CUDA) with torch.compile off. Checked: eval
forward outputs, gradients of a scalar loss w.r.t. the inputs and every parameter, the
KV-cache rollout step by step (past the window, with a mid-rollout reset), and a train
forward at converged power-iteration vectors and from unconverged ones (both update u
from the stored v, then v from u).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from amago_fast.compat.amago_traj_weights import amago_traj_tensors, copy_traj_encoder_to_amago
from amago_fast.nets import TransformerTrajEncoder

B, L, D_IN, D, H, N_LAYERS, D_FF, MAX_TIME = 3, 17, 13, 32, 4, 2, 64, 64
TOL = dict(rtol=1e-5, atol=1e-5)
pytestmark = pytest.mark.usefixtures("no_dynamo")

# (amago_fast pos_emb, AMAGO pos_emb, extra kwargs for both)
CASES = [
    pytest.param("learned", "learnable", {}, id="learned"),
    pytest.param("rotary", "rope", {}, id="rotary-rope"),
    pytest.param("fixed", "fixed", {}, id="fixed-permuted-channels"),
    pytest.param("learned", "learnable", {"sigma_reparam": False}, id="learned-plain-linear"),
    pytest.param("rotary", "rope", {"head_scaling": False}, id="rotary-no-head-scaling"),
]


@pytest.fixture
def gin_max_time(real_amago):
    """AMAGO's LearnablePosEmb takes its table size from gin only (max_time_idx is REQUIRED)."""
    import gin

    gin.bind_parameter("amago.nets.transformer.LearnablePosEmb.max_time_idx", MAX_TIME)
    yield
    gin.clear_config()


def _randomize(enc: TransformerTrajEncoder, seed: int, converged: bool = False) -> None:
    """Every parameter away from its init (LayerNorm ones, head scales 1, gamma 1 would hide
    a permutation bug), and u, v near (converged: at) the top singular vectors."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in enc.named_parameters():
            if p.ndim == 2 and "table" not in name and "head_scale" not in name:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
            else:
                p.add_(0.3 * torch.randn(p.shape, generator=g))
        for m in enc.modules():
            if hasattr(m, "u"):
                U, _, Vh = torch.linalg.svd(m.weight, full_matrices=False)
                noise = 0.0 if converged else 0.2
                m.u.copy_(torch.nn.functional.normalize(U[:, 0] + noise * torch.randn(m.u.shape, generator=g), dim=0))
                m.v.copy_(torch.nn.functional.normalize(Vh[0] + noise * torch.randn(m.v.shape, generator=g), dim=0))


def _pair(real_amago, pos: str, amago_pos: str, max_seq_len: int = 32, seed: int = 0, converged=False, **kw):
    from amago.nets.traj_encoders import TformerTrajEncoder
    from amago.nets.transformer import VanillaAttention

    torch.manual_seed(seed)
    ours = TransformerTrajEncoder(D_IN, D, H, N_LAYERS, D_FF, 0.0, pos, max_seq_len, MAX_TIME, **kw)
    theirs = TformerTrajEncoder(
        D_IN,
        max_seq_len,
        d_model=D,
        n_heads=H,
        d_ff=D_FF,
        n_layers=N_LAYERS,
        dropout_ff=0.0,
        dropout_emb=0.0,
        pos_emb=amago_pos,
        attention_type=VanillaAttention,
        **kw,
    )
    _randomize(ours, seed, converged)
    perm = copy_traj_encoder_to_amago(ours, theirs)
    return ours, theirs, perm


def _inputs(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, L, D_IN, generator=g)
    # windows that start mid-episode: positions come from time_idxs, not the window index
    time_idxs = torch.tensor([0, 5, 30])[:, None] + torch.arange(L)  # (B, L)
    return x, time_idxs


def _forward_backward(ours, theirs, perm, x, time_idxs):
    """Both forwards and the backward of the same scalar loss; returns outputs (AMAGO layout) and input grads."""
    c = torch.randn(B, L, D, generator=torch.Generator().manual_seed(7), dtype=x.dtype)
    x_ours, x_theirs = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_ours = ours(x_ours, time_idxs)[..., perm]  # (B, L, D) in AMAGO's channel order
    out_theirs, hidden = theirs(x_theirs, time_idxs[..., None])
    assert hidden is None
    (out_ours * c).sum().backward()
    (out_theirs * c).sum().backward()
    return (out_ours, out_theirs), (x_ours.grad, x_theirs.grad)


def _amago_f64(theirs, x, time_idxs):
    """AMAGO's encoder in float64 (a copy, eval mode: AMAGO's power iteration casts to
    float32): the reference both float32 runs are measured against."""
    ref = copy.deepcopy(theirs).double().eval()
    c = torch.randn(B, L, D, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    x = x.double().requires_grad_(True)
    (ref(x, time_idxs[..., None])[0] * c).sum().backward()
    return ref, x.grad


def _assert_within_fp32_noise(name, ours, theirs, ref):
    """ours' distance to the float64 reference is at most 10x AMAGO float32's own, plus
    1e-6 of the tensor's scale. The sigma-reparam gamma gradients are sums of ~10^3
    cancelling terms (relative float32 error up to ~3e-4 on both sides), so a fixed
    rtol would be either loose everywhere or flaky there; a mapping bug is O(1)."""
    ref = ref.double()
    err, err_amago = (ours.double() - ref).abs().max(), (theirs.double() - ref).abs().max()
    bound = 10 * err_amago + 1e-6 * ref.abs().max()
    assert err <= bound, f"{name}: |amago_fast - f64| = {err:.3g} > {bound:.3g} (AMAGO fp32: {err_amago:.3g})"


def test_mapping_copies_every_parameter_and_buffer(real_amago, gin_max_time):
    ours, theirs, _ = _pair(real_amago, "learned", "learnable")
    names = [n for n, *_ in amago_traj_tensors(ours, theirs)]
    n_ours = sum(1 for _ in ours.parameters()) + sum(1 for n, _ in ours.named_buffers() if n.endswith((".u", ".v")))
    assert len(names) == len(set(names)) == n_ours
    n_theirs = sum(1 for _ in theirs.parameters()) + sum(
        1 for n, _ in theirs.named_buffers() if n.endswith((".u", ".v"))
    )
    assert n_theirs == n_ours
    for name, a, b in amago_traj_tensors(ours, theirs):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("pos,amago_pos,kw", CASES)
def test_forward_and_gradients_match_amago(real_amago, gin_max_time, pos, amago_pos, kw):
    ours, theirs, perm = _pair(real_amago, pos, amago_pos, **kw)
    ours.eval(), theirs.eval()  # no power iteration: sigma from the stored u, v on both sides
    x, time_idxs = _inputs()
    ref, gx_ref = _amago_f64(theirs, x, time_idxs)
    (out_ours, out_theirs), (gx_ours, gx_theirs) = _forward_backward(ours, theirs, perm, x, time_idxs)
    torch.testing.assert_close(out_ours, out_theirs, **TOL)
    _assert_within_fp32_noise("input", gx_ours, gx_theirs, gx_ref)
    grads = amago_traj_tensors(ours, theirs, grad=True)
    assert len(grads) == sum(1 for _ in ours.parameters())
    for (name, g_ours, g_theirs), (_, _, g_ref) in zip(grads, amago_traj_tensors(ours, ref, grad=True)):
        assert g_ours is not None and g_theirs is not None, name
        _assert_within_fp32_noise(name, g_ours, g_theirs, g_ref)


@pytest.mark.parametrize("pos,amago_pos,kw", CASES[:3])
def test_kv_cache_rollout_matches_amago(real_amago, gin_max_time, pos, amago_pos, kw):
    """Our ring-buffer `step` against AMAGO's `inference_forward` with its rolling Cache:
    40 steps with a window of 8 (both drop the oldest token), env 1 reset at step 12."""
    W, T, RESET_AT = 8, 40, 12
    ours, theirs, perm = _pair(real_amago, pos, amago_pos, max_seq_len=W, **kw)
    ours.eval(), theirs.eval()
    g = torch.Generator().manual_seed(3)
    state, hidden = ours.init_state(B, "cpu"), theirs.init_hidden_state(B, torch.device("cpu"))
    t = torch.tensor([0, 0, 9])  # env 2 starts mid-episode
    with torch.no_grad():
        for step in range(T):
            if step == RESET_AT:
                state.reset(torch.tensor([1]))
                hidden = theirs.reset_hidden_state(hidden, np.array([False, True, False]))
                t[1] = 0
            x = torch.randn(B, D_IN, generator=g)
            y_ours, state = ours.step(x, t, state)
            y_theirs, hidden = theirs(x[:, None], t[:, None, None], hidden_state=hidden)
            torch.testing.assert_close(y_ours[:, perm], y_theirs[:, 0], **TOL, msg=lambda m: f"step {step}: {m}")
            t = t + 1


def test_train_forward_matches_amago_at_converged_power_iteration(real_amago, gin_max_time):
    """At W's singular vectors both power-iteration orders are fixed points, so a train
    forward (one iteration per sigma-reparam layer) and its gradients agree."""
    ours, theirs, perm = _pair(real_amago, "rotary", "rope", converged=True)
    x, time_idxs = _inputs()
    ref, gx_ref = _amago_f64(theirs, x, time_idxs)
    ours.train(), theirs.train()
    (out_ours, out_theirs), (gx_ours, gx_theirs) = _forward_backward(ours, theirs, perm, x, time_idxs)
    torch.testing.assert_close(out_ours, out_theirs, **TOL)
    _assert_within_fp32_noise("input", gx_ours, gx_theirs, gx_ref)
    grads = zip(amago_traj_tensors(ours, theirs, grad=True), amago_traj_tensors(ours, ref, grad=True))
    for (name, g_ours, g_theirs), (_, _, g_ref) in grads:
        _assert_within_fp32_noise(name, g_ours, g_theirs, g_ref)
    for name, a, b in amago_traj_tensors(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=lambda m: f"{name} after update: {m}")


def test_train_forward_matches_amago_from_unconverged_u_v(real_amago, gin_max_time):
    ours, theirs, perm = _pair(real_amago, "rotary", "rope")
    ours.train(), theirs.train()
    (out_ours, out_theirs), _ = _forward_backward(ours, theirs, perm, *_inputs())
    torch.testing.assert_close(out_ours, out_theirs, **TOL)
    for name, a, b in amago_traj_tensors(ours, theirs):
        torch.testing.assert_close(a, b, **TOL, msg=lambda m: f"{name} after update: {m}")


def test_mismatched_configurations_are_rejected(real_amago, gin_max_time):
    from amago.nets.traj_encoders import TformerTrajEncoder
    from amago.nets.transformer import VanillaAttention

    ours = TransformerTrajEncoder(D_IN, D, H, N_LAYERS, D_FF, 0.0, "learned", 32, MAX_TIME)
    make = lambda **kw: TformerTrajEncoder(  # noqa: E731
        D_IN,
        32,
        **{
            "d_model": D,
            "n_heads": H,
            "d_ff": D_FF,
            "n_layers": N_LAYERS,
            "attention_type": VanillaAttention,
            "pos_emb": "learnable",
            **kw,
        },
    )
    for bad, match in [
        ({"pos_emb": "rope"}, "pos_emb"),
        ({"n_heads": 2}, "heads"),
        ({"sigma_reparam": False}, "sigma_reparam"),
        ({"n_layers": 1}, "n_layers"),
        ({"activation": "gelu"}, "activation"),
    ]:
        with pytest.raises(ValueError, match=match):
            copy_traj_encoder_to_amago(ours, make(**bad))

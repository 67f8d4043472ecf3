"""amago_fast's initial weights follow the real AMAGO's initialisation, tensor by tensor.

The loss and forward parity tests copy one set of weights into both packages, so they
cannot see an initialisation that differs; a different init changes how fast a run learns
(before 0.3.1 amago_fast's critic ensemble started with a third of the weight variance of
AMAGO's EinMix layers). Both agents are built at the T-Maze benchmark's size, with the
mappings the parity tests use, and every mapped tensor must have AMAGO's spread: the same
standard deviation (within sampling noise) and the same range, or the same constant.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from amago_fast.agent import Agent, AgentConfig
from amago_fast.compat.amago_traj_weights import amago_traj_tensors
from amago_fast.compat.amago_weights import _pairs as head_pairs

OBS, A, D, HEADS, LAYERS, D_FF, TSTEP_HIDDEN, HEAD_HIDDEN, MAX_LEN = 7, 4, 64, 4, 2, 256, 128, 64, 22
pytestmark = pytest.mark.usefixtures("no_dynamo")


def _agents(real_amago, seed: int = 0):
    from amago.nets import actor_critic, transformer
    from amago.nets.traj_encoders import TformerTrajEncoder
    from amago.nets.tstep_encoders import FFTstepEncoder

    torch.manual_seed(seed)
    cfg = AgentConfig(
        d_model=D,
        n_heads=HEADS,
        n_layers=LAYERS,
        d_ff=D_FF,
        tstep_hidden=TSTEP_HIDDEN,
        tstep_dim=D,
        head_hidden=HEAD_HIDDEN,
        max_seq_len=MAX_LEN,
    )
    obs_space = gym.spaces.Dict({"observation": gym.spaces.Box(-1.0, 1.0, (OBS,), np.float32)})
    ours = Agent(obs_space, gym.spaces.Discrete(A), cfg)
    theirs = real_amago.agent.Agent(
        obs_space=obs_space,
        rl2_space=gym.spaces.Box(-np.inf, np.inf, (A + 1,), np.float32),
        action_space=gym.spaces.Discrete(A),
        max_seq_len=MAX_LEN,
        tstep_encoder_type=lambda **kw: FFTstepEncoder(n_layers=2, d_hidden=TSTEP_HIDDEN, d_output=D, **kw),
        traj_encoder_type=lambda **kw: TformerTrajEncoder(
            d_model=D, n_heads=HEADS, d_ff=D_FF, n_layers=LAYERS, attention_type=transformer.VanillaAttention, **kw
        ),
        actor_type=lambda **kw: actor_critic.Actor(d_hidden=HEAD_HIDDEN, **kw),
        critic_type=lambda **kw: actor_critic.NCritics(d_hidden=HEAD_HIDDEN, **kw),
        num_critics=cfg.num_critics,
    )
    return ours, theirs


def _tstep_pairs(ours, theirs):
    """(name, ours, theirs) in module order: AMAGO's FFTstepEncoder and amago_fast's
    TstepEncoder hold the same layers (in, hidden, out Linear; the output LayerNorm)."""
    mine, amagos = list(ours.tstep.named_parameters()), list(theirs.tstep_encoder.named_parameters())
    assert [tuple(p.shape) for _, p in mine] == [tuple(p.shape) for _, p in amagos]
    return [(f"tstep.{n}", p, q) for (n, p), (_, q) in zip(mine, amagos)]


def _all_pairs(ours, theirs):
    heads = [(f"heads[{i}] {tuple(a.shape)}", a, b) for i, (a, b) in enumerate(head_pairs(ours, theirs))]
    traj = [(f"traj.{n}", a, b) for n, a, b in amago_traj_tensors(ours.traj, theirs.traj_encoder)]
    return heads + traj + _tstep_pairs(ours, theirs)


def _spread_matches(a: torch.Tensor, b: torch.Tensor) -> str | None:
    """None when a and b look drawn from one distribution; else what differs."""
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    if b.numel() == 1 or float(b.std()) == 0.0:  # a constant (LayerNorm, gamma, head scale)
        return None if torch.allclose(a, b) else f"constant {b[0].item()} in AMAGO, {a.tolist()[:4]} here"
    # std of the sample std of a bounded distribution is ~0.5 sigma / sqrt(n): 6 of those
    tol = max(0.03, 3.0 / a.numel() ** 0.5)
    ratio = float(a.std() / b.std())
    if abs(ratio - 1.0) > tol:
        return f"std {a.std():.4f} here vs {b.std():.4f} in AMAGO (ratio {ratio:.3f}, tol {tol:.3f})"
    ratio = float(a.abs().max() / b.abs().max())
    if a.numel() >= 256 and abs(ratio - 1.0) > 0.25:
        return f"range {a.abs().max():.4f} here vs {b.abs().max():.4f} in AMAGO"
    return None


def test_every_mapped_tensor_starts_with_amagos_spread(real_amago):
    ours, theirs = _agents(real_amago)
    pairs = _all_pairs(ours, theirs)
    bad = [f"{name}: {why}" for name, a, b in pairs if (why := _spread_matches(a, b)) is not None]
    assert not bad, "initialisation differs from AMAGO's:\n" + "\n".join(bad)
    covered = {id(a) for _, a, _ in pairs}
    online = [n for n, p in ours.named_parameters() if not n.startswith("target.") and id(p) not in covered]
    assert not online, f"parameters without an AMAGO counterpart in this test: {online}"


def test_critic_ensemble_uses_amagos_einmix_bounds(real_amago):
    # The explicit bounds: weight U(+-sqrt(3 / fan_in)), bias U(+-1 / sqrt(fan_in)).
    ours, theirs = _agents(real_amago, seed=1)
    for mine, amagos in zip(
        [*ours.critics.hidden, ours.critics.out],
        [theirs.critics.net.inp_layer, *theirs.critics.net.core_layers, theirs.critics.net.output_layer],
    ):
        w, bias, fan_in = mine.weight.detach(), mine.bias.detach(), mine.weight.shape[1]
        assert float(w.abs().max()) <= (3.0 / fan_in) ** 0.5
        assert float(w.abs().max()) > 0.95 * (3.0 / fan_in) ** 0.5
        assert float(bias.abs().max()) <= fan_in**-0.5
        assert _spread_matches(mine.weight, amagos.weight) is None


def test_a_third_of_the_variance_is_caught(real_amago):
    # The check itself: nn.Linear's default init (what the critics had) must fail it.
    ours, theirs = _agents(real_amago, seed=2)
    w = ours.critics.out.weight.detach()
    old = torch.empty_like(w).uniform_(-(w.shape[1] ** -0.5), w.shape[1] ** -0.5)
    assert _spread_matches(old, theirs.critics.net.output_layer.weight) is not None

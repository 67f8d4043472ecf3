"""CriticEnsemble's action-input path against the plain formulation it rewrites."""

from __future__ import annotations

import pytest
import torch

from amago_fast.nets.heads import CriticEnsemble


def naive_q(critic: CriticEnsemble, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Every (step, gamma) row through the whole MLP on cat[s, gamma feature, a]."""
    lead, G, A = s.shape[:-1], critic.G, critic.A
    a = a.expand(*lead, G, A).clamp(-0.999, 0.999)
    feat = critic.gamma_feat.view(G, 1).expand(*lead, G, 1)
    x = torch.cat([s.unsqueeze(-2).expand(*lead, G, s.shape[-1]), feat, a], -1).reshape(-1, s.shape[-1] + 1 + A)
    q = critic._mlp(x).view(*lead, G, critic.C, critic.n_out).transpose(-2, -3)
    return q[..., 0] if critic.n_out == 1 else q


@pytest.mark.parametrize("n_out", [1, 5])
@pytest.mark.parametrize("lead,ga", [((3, 7), 1), ((2, 5), 4), ((1,), 4), ((2, 3, 2), 4)], ids=str)
def test_split_first_layer_equals_concatenated_input(n_out, lead, ga):
    torch.manual_seed(0)
    critic = CriticEnsemble(
        d_in=9,
        d_hidden=16,
        n_layers=2,
        action_dim=3,
        gammas=[0.9, 0.99, 0.995, 0.999],
        n_critics=3,
        discrete=False,
        n_out=n_out,
    )
    s = torch.randn(*lead, 9, requires_grad=True)
    a = (torch.rand(*lead, ga, 3) * 2 - 1).requires_grad_()
    got, want = critic(s, a), naive_q(critic, s, a)
    assert got.shape == want.shape == (*lead, 3, 4, *(() if n_out == 1 else (n_out,)))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    g_got = torch.autograd.grad(got.square().sum(), [s, a, *critic.parameters()])
    g_want = torch.autograd.grad(want.square().sum(), [s, a, *critic.parameters()])
    for x, y in zip(g_got, g_want):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("init,w_scale", [("amago", 3.0**0.5), ("linear", 1.0)])
def test_critic_init_bounds(init, w_scale):
    torch.manual_seed(0)
    critics = CriticEnsemble(48, 40, 2, 3, [0.9, 0.99], n_critics=4, discrete=True, init=init)
    for layer in [*critics.hidden, critics.out]:
        fan_in = layer.weight.shape[1]
        w, b = layer.weight.detach().abs().max().item(), layer.bias.detach().abs().max().item()
        assert 0.95 * w_scale / fan_in**0.5 < w <= w_scale / fan_in**0.5
        assert b <= 1.0 / fan_in**0.5


def test_critic_init_is_validated_and_the_cpu_presets_pick_linear():
    from amago_fast.agent import AgentConfig
    from amago_fast.trainer.presets import CPU_AGENT

    with pytest.raises(ValueError, match="critic_init"):
        AgentConfig(critic_init="xavier")
    with pytest.raises(ValueError, match="init"):
        CriticEnsemble(8, 8, 1, 2, [0.9], n_critics=2, discrete=True, init="zeros")
    assert AgentConfig().critic_init == "amago"  # AMAGO's behaviour by default
    assert AgentConfig(**CPU_AGENT).critic_init == "linear"

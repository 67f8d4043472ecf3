"""amago_fast's timestep encoder (style "amago") against the real AMAGO's `FFTstepEncoder`.

Same weights (the MLP's linears, the output LayerNorm, the InputNorm statistics), same
inputs. AMAGO marks padded rows by filling them with its pad value (4.0) and leaves them
out of its input statistics; amago_fast takes the batch mask: given the same rows, both
must move the statistics identically, and produce the same tokens in train and eval mode.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from amago_fast.nets import TstepEncoder

B, L, A = 3, 9, 4
pytestmark = pytest.mark.usefixtures("no_dynamo")


def _pair(real_amago, n_layers: int, seed: int = 0):
    from amago.nets.tstep_encoders import FFTstepEncoder

    space = gym.spaces.Dict(
        {"b_obs": gym.spaces.Box(-1, 1, (5,), np.float32), "a_obs": gym.spaces.Box(-1, 1, (2, 3), np.float32)}
    )
    rl2_space = gym.spaces.Box(-np.inf, np.inf, (1 + A,), np.float32)
    torch.manual_seed(seed)
    ours = TstepEncoder(space, 1 + A, d_hidden=32, d_out=16, n_layers=n_layers, style="amago")
    theirs = FFTstepEncoder(space, rl2_space, n_layers=n_layers, d_hidden=32, d_output=16)
    linears = [m for m in ours.mlp.net if isinstance(m, torch.nn.Linear)]
    amago_linears = [theirs.base.in_layer, *theirs.base.layers, theirs.base.out_layer]
    assert len(linears) == len(amago_linears) == n_layers + 1
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for mine, theirs_lin in zip(linears, amago_linears):
            mine.weight.copy_(torch.randn(mine.weight.shape, generator=g) / mine.weight.shape[1] ** 0.5)
            mine.bias.copy_(0.1 * torch.randn(mine.bias.shape, generator=g))
            theirs_lin.weight.copy_(mine.weight)
            theirs_lin.bias.copy_(mine.bias)
        ours.norm.weight.add_(0.2 * torch.randn(16, generator=g))
        ours.norm.bias.add_(0.2 * torch.randn(16, generator=g))
        theirs.out_norm.norm.weight.copy_(ours.norm.weight)
        theirs.out_norm.norm.bias.copy_(ours.norm.bias)
    return space, ours, theirs


def _inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    obs = {"a_obs": 3.0 + 2.0 * torch.randn(B, L, 2, 3, generator=g), "b_obs": torch.randn(B, L, 5, generator=g)}
    rl2s = torch.cat([10.0 * torch.randn(B, L, 1, generator=g), torch.randn(B, L, A, generator=g)], -1)
    lengths = torch.tensor([L, 6, 3])
    mask = torch.arange(L)[None] < lengths[:, None]
    return obs, rl2s, mask


def _padded_for_amago(obs, rl2s, mask, pad=4.0):
    fill = lambda x: torch.where(mask.reshape(B, L, *[1] * (x.ndim - 2)), x, torch.full_like(x, pad))  # noqa: E731
    return {k: fill(v) for k, v in obs.items()}, fill(rl2s)


@pytest.mark.parametrize("n_layers", [1, 2])
def test_tokens_and_input_statistics_match_amago(real_amago, n_layers):
    _, ours, theirs = _pair(real_amago, n_layers)
    for step in range(4):  # several training forwards: the statistics move each time
        obs, rl2s, mask = _inputs(10 + step)
        ours.train(), theirs.train()
        out = ours(obs, rl2s, mask)
        a_obs, a_rl2s = _padded_for_amago(obs, rl2s, mask)
        ref = theirs(a_obs, a_rl2s)
        torch.testing.assert_close(ours.in_norm.mu, theirs.in_norm.mu, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ours.in_norm.nu, theirs.in_norm.nu, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(out[mask], ref[mask], rtol=1e-4, atol=1e-5)
    ours.eval(), theirs.eval()
    mu = ours.in_norm.mu.clone()
    obs, rl2s, mask = _inputs(99)
    torch.testing.assert_close(ours(obs, rl2s), theirs(obs, rl2s), rtol=1e-4, atol=1e-5)
    assert torch.equal(ours.in_norm.mu, mu)  # eval forwards leave the statistics alone

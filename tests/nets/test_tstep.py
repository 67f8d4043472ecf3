import gymnasium as gym
import numpy as np
import torch

from amago_fast.nets import TstepEncoder


def test_image_vector_and_discrete_keys_are_encoded_with_gradients():
    space = gym.spaces.Dict(
        {
            "image": gym.spaces.Box(0, 255, (11, 9, 3), np.uint8),
            "vec": gym.spaces.Box(-1, 1, (2, 3), np.float32),
            "cell": gym.spaces.Discrete(5),
        }
    )
    enc = TstepEncoder(space, rl2_dim=4, d_hidden=32, d_out=16)
    assert set(enc.cnns) == {"image"}
    B, L = 2, 7
    obs = {
        "image": torch.randint(0, 256, (B, L, 11, 9, 3), dtype=torch.uint8),
        "vec": torch.randn(B, L, 2, 3),
        "cell": torch.randint(0, 5, (B, L)),
    }
    rl2s = torch.randn(B, L, 4)
    out = enc(obs, rl2s)
    assert out.shape == (B, L, 16)
    out.sum().backward()
    assert all(p.grad is not None for p in enc.parameters())
    # each step is encoded independently of the others (eval: the input statistics are frozen)
    enc.eval()
    out = enc(obs, rl2s)
    one = enc({k: v[:, 3:4] for k, v in obs.items()}, rl2s[:, 3:4])
    torch.testing.assert_close(one[:, 0], out[:, 3], atol=1e-5, rtol=1e-5)


def test_reward_symlog_keeps_large_rewards_bounded():
    space = gym.spaces.Dict({"observation": gym.spaces.Box(-1, 1, (1,), np.float32)})
    enc = TstepEncoder(space, rl2_dim=2, d_hidden=8, d_out=4, style="compact")
    obs = {"observation": torch.zeros(1, 1, 1)}
    small = enc(obs, torch.tensor([[[1e6, 0.0]]]))
    assert torch.isfinite(small).all()


def _vector_encoder(**kw):
    space = gym.spaces.Dict({"observation": gym.spaces.Box(-1, 1, (3,), np.float32)})
    return TstepEncoder(space, rl2_dim=2, d_hidden=8, d_out=4, **kw)


def test_input_statistics_move_only_in_training_and_only_on_real_rows():
    enc = _vector_encoder()
    B, L = 3, 5
    obs = {"observation": torch.randn(B, L, 3) + 5.0}
    rl2s = torch.randn(B, L, 2)
    mask = torch.ones(B, L, dtype=torch.bool)
    mask[:, 3:] = False
    enc.eval()
    enc(obs, rl2s, mask)
    assert torch.equal(enc.in_norm.mu, torch.zeros(5)) and enc.in_norm.t.item() == 1
    enc.train()
    enc(obs, rl2s, mask)
    real = torch.cat([obs["observation"], rl2s], -1)[:, :3].reshape(-1, 5)
    beta_t = 1e-4 / (1 - (1 - 1e-4) ** 2)  # the second step of the bias-corrected EMA
    # (beta_t in float32, as AMAGO computes it: ~3e-4 relative from the exact value)
    torch.testing.assert_close(enc.in_norm.mu, beta_t * real.mean(0), rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(enc.in_norm.nu, (1 - beta_t) + beta_t * (real**2).mean(0), rtol=1e-3, atol=1e-5)
    # the padded rows do not count: changing them changes nothing
    other = _vector_encoder()
    other.load_state_dict(enc.state_dict())
    obs2 = {"observation": obs["observation"].clone()}
    obs2["observation"][:, 3:] = 1e6
    enc(obs, rl2s, mask), other(obs2, rl2s, mask)
    torch.testing.assert_close(enc.in_norm.mu, other.in_norm.mu)
    # a batch without a real row leaves the statistics alone (no NaN)
    mu = enc.in_norm.mu.clone()
    enc(obs, rl2s, torch.zeros(B, L, dtype=torch.bool))
    assert torch.equal(enc.in_norm.mu, mu)


def test_input_norm_centres_constant_features_and_scales_the_rest():
    from amago_fast.nets.input_norm import InputNorm

    norm = InputNorm(2, beta=1.0)  # beta 1: the statistics are the last batch's
    x = torch.stack([torch.full((64,), 3.0), torch.linspace(-10, 30, 64)], -1)
    norm.update(x)
    y = norm(x)
    torch.testing.assert_close(y[:, 0], torch.zeros(64), atol=1e-6, rtol=0)  # sigma ~ 0: centred only
    torch.testing.assert_close(y[:, 1].mean(), torch.tensor(0.0), atol=1e-4, rtol=0)
    torch.testing.assert_close(y[:, 1].std(unbiased=False), torch.tensor(1.0), atol=1e-3, rtol=0)


def test_bad_style_and_layers_are_refused():
    import pytest

    with pytest.raises(ValueError, match="style"):
        _vector_encoder(style="fancy")
    with pytest.raises(ValueError, match="n_layers"):
        _vector_encoder(n_layers=0)

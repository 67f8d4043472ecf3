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
    # each step is encoded independently of the others
    one = enc({k: v[:, 3:4] for k, v in obs.items()}, rl2s[:, 3:4])
    torch.testing.assert_close(one[:, 0], out[:, 3], atol=1e-5, rtol=1e-5)


def test_reward_symlog_keeps_large_rewards_bounded():
    space = gym.spaces.Dict({"observation": gym.spaces.Box(-1, 1, (1,), np.float32)})
    enc = TstepEncoder(space, rl2_dim=2, d_hidden=8, d_out=4)
    obs = {"observation": torch.zeros(1, 1, 1)}
    small = enc(obs, torch.tensor([[[1e6, 0.0]]]))
    assert torch.isfinite(small).all()

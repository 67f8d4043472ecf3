"""The Transformer block's layout as AMAGO's TformerTrajEncoder: where dropout acts, head
scaling, the bias-free qkv projection, sigma-reparam's start, and old configs' layout."""

from __future__ import annotations

import torch

from amago_fast.agent import Agent, AgentConfig
from amago_fast.nets import TransformerTrajEncoder
from amago_fast.nets.layers import SigmaReparamLinear


def _encoder(**kw) -> TransformerTrajEncoder:
    torch.manual_seed(0)
    args = dict(
        d_in=5, d_model=16, n_heads=4, n_layers=2, d_ff=32, dropout=0.5, pos_emb="fixed", max_seq_len=8, max_time=64
    )
    args.update(kw)
    return TransformerTrajEncoder(**args)


def test_dropout_acts_on_the_embedding_and_each_ff_output_only():
    enc = _encoder().train()
    seen = []
    for name, mod in enc.named_modules():
        if name.endswith("drop"):
            mod.register_forward_hook(lambda m, i, o, name=name: seen.append((name, tuple(i[0].shape))))
    enc(torch.randn(2, 7, 5), torch.arange(7).expand(2, 7))
    assert seen == [("drop", (2, 7, 16)), ("blocks.0.drop", (2, 7, 16)), ("blocks.1.drop", (2, 7, 16))]


def test_head_scaling_weighs_each_heads_output():
    enc = _encoder(dropout=0.0, sigma_reparam=False).eval()  # (sigma would rescale the edited weight)
    x, t = torch.randn(2, 7, 5), torch.arange(7).expand(2, 7)
    blk = enc.blocks[0]
    assert blk.head_scale.shape == (4, 1) and blk.qkv.bias is None
    with torch.no_grad():
        blk.head_scale[1] = 0.0
        out = enc(x, t)
        blk.head_scale[1] = 1.0
        blk.attn_out.weight[:, 4:8] = 0.0  # head 1's input columns of the output projection
        want = enc(x, t)
    torch.testing.assert_close(out, want)


def test_sigma_reparam_starts_at_the_exact_spectral_norm():
    torch.manual_seed(1)
    lin = SigmaReparamLinear(24, 40)
    sigma = torch.dot(lin.u, lin.weight @ lin.v)
    torch.testing.assert_close(sigma, torch.linalg.matrix_norm(lin.weight, ord=2), rtol=1e-5, atol=0)


def test_configs_saved_before_the_layout_fields_rebuild_the_old_network():
    import gymnasium as gym
    import numpy as np

    obs = gym.spaces.Dict({"observation": gym.spaces.Box(-1, 1, (3,), np.float32)})
    small = dict(
        d_model=16, n_heads=2, n_layers=1, d_ff=32, tstep_dim=8, tstep_hidden=16, head_hidden=16, max_seq_len=8
    )
    newer = ("head_scaling", "qkv_bias", "tstep_layers", "tstep_style")
    old = {k: v for k, v in AgentConfig(**small).to_dict().items() if k not in newer}
    legacy = AgentConfig.from_saved(old)
    assert (legacy.head_scaling, legacy.qkv_bias, legacy.tstep_layers, legacy.tstep_style) == (
        False,
        True,
        1,
        "compact",
    )
    keys = set(Agent(obs, gym.spaces.Discrete(2), legacy).state_dict())
    assert "traj.blocks.0.qkv.bias" in keys and "traj.blocks.0.head_scale" not in keys
    # the 0.2 timestep encoder: Linear -> LeakyReLU -> Linear, no input statistics
    assert not any(k.startswith("tstep.in_norm.") or k.startswith("tstep.mlp.net.4.") for k in keys)
    # a new run from a partial dict gets today's defaults, not the legacy ones
    fresh = AgentConfig.from_dict(small)
    assert (fresh.head_scaling, fresh.qkv_bias, fresh.tstep_layers, fresh.tstep_style) == (True, False, 2, "amago")
    keys = set(Agent(obs, gym.spaces.Discrete(2), fresh).state_dict())
    assert "traj.blocks.0.qkv.bias" not in keys and "traj.blocks.0.head_scale" in keys
    assert {"tstep.in_norm.mu", "tstep.in_norm.nu", "tstep.mlp.net.4.weight"} <= keys

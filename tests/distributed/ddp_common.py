"""Helpers shared by test_ddp.py and worker_ddp.py (plain module, imported by path)."""

import gymnasium as gym
import numpy as np
import torch

from amago_fast.agent import Agent, AgentConfig

OBS = gym.spaces.Dict({"observation": gym.spaces.Box(-1, 1, (3,), np.float32)})
ACT = gym.spaces.Discrete(3)


def make_agent(**overrides) -> Agent:
    # One critic: REDQ's per-element draw (with replacement, as AMAGO) can then only pick
    # critic 0, so the rank-local RNG cannot pick other critics than the single process;
    # dropout 0 likewise.
    cfg = AgentConfig(
        d_model=16,
        n_heads=2,
        n_layers=1,
        d_ff=32,
        max_seq_len=12,
        tstep_dim=8,
        tstep_hidden=16,
        head_hidden=16,
        dropout=0.0,
        warmup=1,
        num_critics=1,
        redq_subset=1,
        popart_beta=0.1,
        **overrides,
    )
    torch.manual_seed(0)
    return Agent(OBS, ACT, cfg)


def make_batch(B: int, L: int, lengths, seed: int) -> dict:
    """Flat {name: tensor} batch (safetensors-friendly); row i has lengths[i] real transitions."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(B, L + 1, dtype=torch.bool)
    for i, n in enumerate(lengths):
        mask[i, : n + 1] = True
    return {
        "obs.observation": torch.randn(B, L + 1, 3, generator=g),
        "rl2s": torch.randn(B, L + 1, 4, generator=g),
        "time_idxs": torch.arange(L + 1).repeat(B, 1)[..., None],
        "actions": torch.nn.functional.one_hot(torch.randint(0, 3, (B, L), generator=g), 3).float(),
        "rews": torch.randn(B, L, 1, generator=g) * 5,
        "dones": torch.rand(B, L, 1, generator=g) < 0.1,
        "mask": mask,
    }


def to_batch(flat: dict) -> dict:
    b = {k: v for k, v in flat.items() if not k.startswith("obs.")}
    b["obs"] = {k[4:]: v for k, v in flat.items() if k.startswith("obs.")}
    return b


def split_rows(flat: dict, rank: int, world: int) -> dict:
    """Rank r's contiguous share of the batch rows (the concatenation is the whole batch)."""
    B = flat["mask"].shape[0]
    per = B // world
    return to_batch({k: v[rank * per : (rank + 1) * per] for k, v in flat.items()})

import gymnasium as gym
import numpy as np
import pytest
import torch

from amago_fast.agent import Agent, AgentConfig

SPACES = {
    "discrete": gym.spaces.Discrete(3),
    "box": gym.spaces.Box(-2.0, 2.0, (2,), np.float32),
    "multibinary": gym.spaces.MultiBinary(4),
}
OBS = gym.spaces.Dict({"observation": gym.spaces.Box(-1, 1, (3,), np.float32)})


def tiny_config(**kw) -> AgentConfig:
    base = dict(
        d_model=32,
        n_heads=2,
        n_layers=2,
        d_ff=64,
        max_seq_len=16,
        tstep_dim=16,
        tstep_hidden=32,
        head_hidden=32,
        dropout=0.0,
        warmup=0,  # full lr from the first update (warmup 1 would make update 0 a no-op)
    )
    base.update(kw)
    return AgentConfig(**base)


def make_agent(space="discrete", **kw) -> Agent:
    torch.manual_seed(0)
    return Agent(OBS, SPACES[space], tiny_config(**kw))


def random_batch(agent: Agent, B=4, L=12, seed=0, lengths=None) -> dict:
    """Batch-shaped random data; rows right-padded to `lengths` transitions."""
    g = torch.Generator().manual_seed(seed)
    A = agent.action_dim
    if agent.discrete:
        actions = torch.nn.functional.one_hot(torch.randint(0, A, (B, L), generator=g), A).float()
    elif agent.kind == "multibinary":
        actions = torch.randint(0, 2, (B, L, A), generator=g).float()
    else:
        actions = torch.rand(B, L, A, generator=g) * 2 - 1
    lengths = lengths or [L] * B
    mask = torch.zeros(B, L + 1, dtype=torch.bool)
    for i, n in enumerate(lengths):
        mask[i, : n + 1] = True
    return dict(
        obs={"observation": torch.randn(B, L + 1, 3, generator=g)},
        rl2s=torch.randn(B, L + 1, 1 + A, generator=g),
        time_idxs=torch.arange(L + 1).repeat(B, 1)[..., None],
        actions=actions,
        rews=torch.randn(B, L, 1, generator=g),
        dones=torch.zeros(B, L, 1, dtype=torch.bool),
        mask=mask,
    )


@pytest.fixture(params=list(SPACES))
def space(request):
    return request.param


@pytest.fixture(name="make_agent")
def _make_agent_fixture():
    return make_agent


@pytest.fixture(name="random_batch")
def _random_batch_fixture():
    return random_batch

"""Agent throughput: gradient steps/s, acting (KV-cache) steps/s, env steps/s of collection.

Quick by default (CI runs it once with --benchmark-disable). Set AMAGO_BENCH_L (window
length, default 32), AMAGO_BENCH_B (batch, default 8) for AMAGO-sized numbers, e.g.
AMAGO_BENCH_L=128 AMAGO_BENCH_B=24. Models: "cpu" = the CLI's CPU config
(d_model 64, 2 layers), "default" = AgentConfig() (d_model 256, 3 layers, 8 heads),
"default-current-dpg" the same with dpg_critics="current".
"""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
import pytest
import torch

from amago_fast.agent import Agent, AgentConfig
from amago_fast.trainer.presets import CPU_AGENT

L = int(os.environ.get("AMAGO_BENCH_L", "32"))
B = int(os.environ.get("AMAGO_BENCH_B", "8"))
# "default-current-dpg": AgentConfig() with dpg_critics="current" (this update's critics
# for DPG and V(s)), which skips the default AMAGO copy's critic forward and weight gradients
MODELS = {"cpu": CPU_AGENT, "default": {}, "default-current-dpg": {"dpg_critics": "current"}}


def _agent(model: str, max_seq_len: int) -> Agent:
    torch.manual_seed(0)
    obs = gym.spaces.Dict({"observation": gym.spaces.Box(-1, 1, (2,), np.float32)})
    return Agent(obs, gym.spaces.Discrete(4), AgentConfig(**{**MODELS[model], "max_seq_len": max_seq_len}))


def _batch(A: int) -> dict:
    g = torch.Generator().manual_seed(0)
    return dict(
        obs={"observation": torch.randn(B, L + 1, 2, generator=g)},
        rl2s=torch.randn(B, L + 1, 1 + A, generator=g),
        time_idxs=torch.arange(L + 1).repeat(B, 1)[..., None],
        actions=torch.nn.functional.one_hot(torch.randint(0, A, (B, L), generator=g), A).float(),
        rews=torch.randn(B, L, 1, generator=g),
        dones=torch.zeros(B, L, 1, dtype=torch.bool),
        mask=torch.ones(B, L + 1, dtype=torch.bool),
    )


@pytest.mark.parametrize("model", list(MODELS))
def test_grad_step(benchmark, model):
    """One full AMAGO update (online + target forward, backward, AdamW, EMA)."""
    agent = _agent(model, L + 1)
    batch = _batch(agent.action_dim)
    benchmark.extra_info.update(batch=B, seq_len=L, tokens=B * (L + 1))
    benchmark.pedantic(agent.train_step, args=(batch,), rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("num_envs", [8])
def test_act_step(benchmark, model, num_envs):
    """get_actions for num_envs envs with a KV cache holding ~L/2 tokens each."""
    agent = _agent(model, L + 1)
    state = agent.init_state(num_envs)
    obs = {"observation": np.zeros((num_envs, 2), np.float32)}
    rl2s = np.zeros((num_envs, 1 + agent.action_dim), np.float32)
    for t in range(L // 2):
        agent.get_actions(obs, rl2s, np.full(num_envs, t), state)

    def act():
        agent.get_actions(obs, rl2s, np.full(num_envs, L // 2), state)
        state.count -= 1  # keep the context length fixed across rounds

    benchmark.extra_info.update(num_envs=num_envs, context=L // 2)
    benchmark.pedantic(act, rounds=20, warmup_rounds=2)


def test_collect_env_steps(benchmark, tmp_path):
    """Trainer.collect on tmaze(horizon 20), 8 envs x 16 steps: acting + env + replay."""
    pytest.importorskip("amago_fast.envs")
    from amago_fast.trainer import Trainer, TrainerConfig

    cfg = TrainerConfig(env="tmaze", env_args={"horizon": 20}, num_envs=8, progress=False, checkpoint_every=0)
    tr = Trainer(tmp_path, cfg, AgentConfig(**CPU_AGENT))
    benchmark.extra_info.update(env_steps_per_round=8 * 16)
    benchmark.pedantic(tr.collect, args=(16,), rounds=3, warmup_rounds=1)
    tr.close()

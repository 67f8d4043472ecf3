"""A standalone memory-task agent on amago_fast's kernels and nothing else of it.

Uses only ``amago_fast.ReplayBuffer`` (C++ trajectory store + window sampler) and
``amago_fast.flash_attn_func`` (causal attention; Triton on CUDA, PyTorch on CPU), with its
own environment, model and training loop: the proof that the kernels stand alone.

Task (a T-maze in miniature): the first observation shows a cue (+1 or -1); then the
agent walks down a corridor of ``--corridor`` blank steps; at the junction (flagged in
the observation) it must pick the action matching the cue: reward 1, else 0. Only
memory of step 0 solves it, so a memoryless policy scores 50%.

Learner: a small causal Transformer over (obs, previous reward, previous action) tokens
and a sequence DQN: Q(h_t, a) regressed on r_t + gamma (1 - d_t) max_a' Q_target(h_{t+1}, a')
over whole sampled windows, masked on padding.

    python examples/cue_memory_dqn.py --steps 400 --corridor 16  # 100% success, ~15 s on 1 CPU core
    python examples/cue_memory_dqn.py --steps 50 --corridor 4    # smoke test (seconds)
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from amago_fast import ReplayBuffer, flash_attn_func


class CueMemoryEnv(gym.Env):
    """Observation [cue or 0, at-junction flag]; Discrete(2); reward 1 for matching the cue."""

    def __init__(self, corridor: int = 8):
        self.corridor = corridor
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def _obs(self) -> np.ndarray:
        cue = self.cue if self.t == 0 else 0.0
        return np.array([cue, float(self.t == self.corridor)], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.cue = 0, float(self.np_random.choice([-1.0, 1.0]))
        return self._obs(), {}

    def step(self, action: int):
        if self.t < self.corridor:
            self.t += 1
            return self._obs(), 0.0, False, False, {}
        reward = float(int(action) == int(self.cue > 0))
        return self._obs(), reward, True, False, {}


@dataclass
class Config:
    """Hyperparameters of the example (all small: it must run on a laptop CPU)."""

    steps: int = 400
    """gradient steps"""
    corridor: int = 16
    """blank steps between the cue and the junction"""
    num_envs: int = 16
    """episodes collected per collection round"""
    collect_every: int = 4
    """gradient steps between collection rounds"""
    batch_size: int = 32
    """windows per gradient step"""
    d_model: int = 64
    """Transformer width"""
    n_heads: int = 4
    """attention heads"""
    layers: int = 2
    """Transformer blocks"""
    lr: float = 1e-3
    """AdamW learning rate"""
    gamma: float = 0.99
    """discount"""
    target_tau: float = 0.02
    """EMA rate of the target network"""
    eps_start: float = 1.0
    """initial exploration rate"""
    eps_end: float = 0.05
    """final exploration rate (reached at half of --steps)"""
    seed: int = 0
    """seed for torch, numpy, the envs and the replay buffer"""
    device: str = "cpu"
    """torch device"""


class Block(nn.Module):
    """Pre-norm Transformer block whose attention is amago_fast.flash_attn_func."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, d)
        B, L, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(B, L, 3, self.heads, d // self.heads).unbind(2)
        attn = flash_attn_func(q, k, v, causal=True)  # (B, L, H, d/H)
        x = x + self.out(attn.reshape(B, L, d))
        return x + self.ff(self.norm2(x))


class QNet(nn.Module):
    """Tokens [obs_t, rl2s_t] + learned time embedding -> causal Transformer -> Q(h_t, .)."""

    def __init__(self, obs_dim: int, n_actions: int, max_len: int, cfg: Config):
        super().__init__()
        self.inp = nn.Linear(obs_dim + 1 + n_actions, cfg.d_model)
        self.time = nn.Embedding(max_len, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg.d_model, cfg.n_heads) for _ in range(cfg.layers))
        self.head = nn.Sequential(nn.LayerNorm(cfg.d_model), nn.Linear(cfg.d_model, n_actions))

    def forward(self, obs, rl2s, time_idxs) -> torch.Tensor:
        # obs (B, L, obs_dim), rl2s (B, L, 1+A), time_idxs (B, L) -> Q (B, L, A)
        x = self.inp(torch.cat([obs, rl2s], dim=-1)) + self.time(time_idxs)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def run_episodes(envs, qnet, eps: float, rng: np.random.Generator, device) -> list[dict]:
    """Play one episode in every env (all have the same length) and return AMAGO-format arrays."""
    n, A = len(envs), envs[0].action_space.n
    first = np.stack([env.reset(seed=int(rng.integers(2**31)))[0] for env in envs])
    obs, rl2s, actions, rews, dones = [first], [np.zeros((n, 1 + A), np.float32)], [], [], []
    done = np.zeros(n, bool)
    while not done.all():
        t = len(actions)
        with torch.no_grad():
            q = qnet(
                torch.as_tensor(np.stack(obs, 1), device=device),
                torch.as_tensor(np.stack(rl2s, 1), device=device),
                torch.arange(t + 1, device=device).expand(n, t + 1),
            )[:, -1]
        act = q.argmax(-1).cpu().numpy()
        explore = rng.random(n) < eps
        act[explore] = rng.integers(A, size=int(explore.sum()))
        step = [env.step(int(a)) for env, a in zip(envs, act)]
        one_hot = np.eye(A, dtype=np.float32)[act]
        r = np.array([s[1] for s in step], np.float32)
        done = np.array([s[2] or s[3] for s in step])
        obs.append(np.stack([s[0] for s in step]))
        rl2s.append(np.concatenate([r[:, None], one_hot], 1))
        actions.append(one_hot)
        rews.append(r)
        dones.append(np.array([s[2] for s in step]))
    T = len(actions)
    return [
        dict(
            obs={"observation": np.stack(obs, 1)[i]},  # (T+1, obs_dim)
            rl2s=np.stack(rl2s, 1)[i],  # (T+1, 1+A)
            time_idxs=np.arange(T + 1),
            actions=np.stack(actions, 1)[i],  # (T, A)
            rews=np.stack(rews, 1)[i],  # (T,)
            dones=np.stack(dones, 1)[i],  # (T,)
        )
        for i in range(n)
    ]


def td_loss(qnet, target, batch, gamma: float) -> torch.Tensor:
    """Masked one-step TD error over every transition of every window."""
    obs, rl2s = batch.obs["observation"], batch.rl2s  # (B, L+1, ...)
    t_idx = batch.time_idxs[..., 0]  # (B, L+1)
    q = qnet(obs, rl2s, t_idx)  # (B, L+1, A)
    with torch.no_grad():
        q_next = target(obs, rl2s, t_idx)[:, 1:].max(-1).values  # (B, L)
        y = batch.rews[..., 0] + gamma * (~batch.dones[..., 0]).float() * q_next
    q_taken = (q[:, :-1] * batch.actions).sum(-1)  # (B, L)
    valid = batch.mask[:, 1:].float()  # real transitions
    return (F.smooth_l1_loss(q_taken, y, reduction="none") * valid).sum() / valid.sum().clamp_min(1)


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, f in Config.__dataclass_fields__.items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(f.default), default=f.default)
    cfg = Config(**vars(parser.parse_args(argv)))
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = torch.device(cfg.device)
    envs = [CueMemoryEnv(cfg.corridor) for _ in range(cfg.num_envs)]
    ep_len = cfg.corridor + 1  # transitions per episode
    buffer = ReplayBuffer.from_spaces(envs[0].observation_space, envs[0].action_space, capacity=200_000, seed=cfg.seed)
    qnet = QNet(2, 2, ep_len + 1, cfg).to(device)
    target = QNet(2, 2, ep_len + 1, cfg).to(device)
    target.load_state_dict(qnet.state_dict())
    opt = torch.optim.AdamW(qnet.parameters(), lr=cfg.lr)
    start, loss = time.time(), float("nan")
    for step in range(cfg.steps):
        if step % cfg.collect_every == 0:
            eps = cfg.eps_end + (cfg.eps_start - cfg.eps_end) * max(0.0, 1 - 2 * step / max(cfg.steps, 1))
            for traj in run_episodes(envs, qnet, eps, rng, device):
                buffer.add_trajectory(**traj)
        batch = buffer.sample(cfg.batch_size, ep_len).to(device)
        loss_t = td_loss(qnet, target, batch, cfg.gamma)
        opt.zero_grad()
        loss_t.backward()
        nn.utils.clip_grad_norm_(qnet.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for p, tp in zip(qnet.parameters(), target.parameters()):
                tp.lerp_(p, cfg.target_tau)
        loss = loss_t.item()
        if (step + 1) % max(1, cfg.steps // 10) == 0:
            print(
                f"step {step + 1:>6}  td_loss {loss:.4f}  buffer {buffer.num_timesteps} steps  "
                f"{time.time() - start:.1f}s",
                flush=True,
            )
    evals = run_episodes([CueMemoryEnv(cfg.corridor) for _ in range(64)], qnet, 0.0, rng, device)
    success = float(np.mean([t["rews"].sum() for t in evals]))
    print(f"success_rate {success:.3f}  final_td_loss {loss:.4f}  wall {time.time() - start:.1f}s")
    if not math.isfinite(loss):
        raise SystemExit("training diverged (non-finite loss)")
    return success


if __name__ == "__main__":
    main()

"""amago_fast against peer libraries, at equal sizes (see RESULTS.md, "Peers").

1. Window sampling: ``ReplayBuffer.sample(B, L)`` vs TorchRL ``ReplayBuffer`` +
   ``SliceSampler(slice_len=L)`` over ``LazyTensorStorage`` holding the same trajectories
   (B windows of L transitions, same buffer size, same fields). TorchRL is measured with
   its default sampler (trajectory boundaries recomputed per call) and with
   ``cache_values=True`` (boundaries cached: its best case for a static buffer).
2. Single-goal HER: Stable-Baselines3 ``HerReplayBuffer.sample(B)`` ("future", 4 sampled
   goals) vs amago_fast ``ReplayBuffer(relabeler=HERRelabeler("future"))``; compared as
   relabeled transitions per second (SB3 returns B transitions, amago_fast B windows of
   L transitions cut from relabeled whole trajectories).

Peers are optional (``pip install 'amago_fast[peers]'``); a missing one skips its cases.
Sizes scale with AMAGO_FAST_BENCH_SCALE (default 0.01: 10k timesteps, quick for CI);
RESULTS.md numbers use AMAGO_FAST_BENCH_SCALE=1 (1M timesteps for sampling):

    AMAGO_FAST_BENCH_SCALE=1 pytest benchmarks/bench_peers.py --benchmark-json peers.json
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from amago_fast import ReplayBuffer

SCALE = float(os.environ.get("AMAGO_FAST_BENCH_SCALE", "0.01"))
TIMESTEPS = max(int(1_000_000 * SCALE), 5_000)
TRAJ_LEN = 1000 if SCALE >= 0.1 else 250
OBS_DIM, A = 16, 4
B, L = 24, (256 if SCALE >= 0.1 else 64)


def _trajectories(n_traj: int, T: int, seed: int = 0):
    """(n_traj, T+1, OBS_DIM) obs etc. as arrays, one row per trajectory."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n_traj, T + 1, OBS_DIM)).astype(np.float32)
    act = np.eye(A, dtype=np.float32)[rng.integers(A, size=(n_traj, T))]
    rews = rng.normal(size=(n_traj, T)).astype(np.float32)
    dones = np.zeros((n_traj, T), bool)
    dones[:, -1] = True
    return obs, act, rews, dones


@pytest.fixture(scope="module")
def sampling_data():
    n_traj = TIMESTEPS // TRAJ_LEN
    obs, act, rews, dones = _trajectories(n_traj, TRAJ_LEN)
    rl2s = np.concatenate(
        [
            np.concatenate([np.zeros((n_traj, 1, 1)), rews[..., None]], 1),
            np.concatenate([np.zeros((n_traj, 1, A)), act], 1),
        ],
        -1,
    ).astype(np.float32)
    buf = ReplayBuffer({"observation": ((OBS_DIM,), np.float32)}, A, capacity=TIMESTEPS, seed=0)
    for i in range(n_traj):
        buf.add_trajectory({"observation": obs[i]}, rl2s[i], np.arange(TRAJ_LEN + 1), act[i], rews[i], dones[i])
    return dict(buf=buf, obs=obs, act=act, rews=rews, dones=dones, n_traj=n_traj)


def _report(benchmark, transitions: int, peer: str) -> None:
    benchmark.extra_info.update(transitions_per_call=transitions, peer=peer, timesteps=TIMESTEPS, batch=B, window=L)


def test_sampling_amago_fast(benchmark, sampling_data):
    benchmark.group = "peers: window sampling"
    buf = sampling_data["buf"]
    batch = benchmark(buf.sample, B, L)
    assert batch.actions.shape == (B, L, A) and bool(batch.mask.all())
    _report(benchmark, B * L, "amago_fast")


@pytest.mark.parametrize("cache_values", [False, True], ids=["default", "cache_values"])
def test_sampling_torchrl_slice_sampler(benchmark, sampling_data, cache_values):
    pytest.importorskip("torchrl")
    from tensordict import TensorDict
    from torchrl.data import LazyTensorStorage, SliceSampler
    from torchrl.data import ReplayBuffer as TorchRLBuffer

    benchmark.group = "peers: window sampling"
    d = sampling_data
    n, T = d["n_traj"], TRAJ_LEN
    steps = TensorDict(
        {
            "observation": torch.from_numpy(d["obs"][:, :T].reshape(n * T, OBS_DIM)),
            "action": torch.from_numpy(d["act"].reshape(n * T, A)),
            "next": {
                "observation": torch.from_numpy(d["obs"][:, 1:].reshape(n * T, OBS_DIM)),
                "reward": torch.from_numpy(d["rews"].reshape(n * T, 1)),
                "done": torch.from_numpy(d["dones"].reshape(n * T, 1)),
                "terminated": torch.from_numpy(d["dones"].reshape(n * T, 1)),
            },
            "episode": torch.arange(n).repeat_interleave(T),
        },
        batch_size=[n * T],
    )
    rb = TorchRLBuffer(
        storage=LazyTensorStorage(TIMESTEPS),
        sampler=SliceSampler(slice_len=L, traj_key="episode", cache_values=cache_values),
        batch_size=B * L,
    )
    rb.extend(steps)
    out = benchmark(rb.sample)
    assert out.shape == (B * L,)
    _report(benchmark, B * L, f"torchrl SliceSampler ({'cached' if cache_values else 'default'})")


# ---- single-goal HER -------------------------------------------------------------------

HER_EPISODES = max(int(2_000 * SCALE * 10), 100)  # 100 (CI) .. 20k episodes (x50 steps = 1M)
HER_T, GOAL_DIM, HER_BATCH = 50, 3, 256


def _her_episodes(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    achieved = np.cumsum(rng.normal(scale=0.1, size=(n, HER_T + 1, GOAL_DIM)), 1).astype(np.float32)
    desired = np.repeat(rng.normal(size=(n, 1, GOAL_DIM)).astype(np.float32), HER_T + 1, 1)
    obs = rng.normal(size=(n, HER_T + 1, 4)).astype(np.float32)
    actions = rng.uniform(-1, 1, size=(n, HER_T, 2)).astype(np.float32)
    return obs, achieved, desired, actions


def _sparse_reward(achieved, desired):
    return -(np.abs(achieved - desired).max(-1) > 0.05).astype(np.float32)


def _her_relabeler(relabel):
    return relabel.HERRelabeler(strategy="future", tolerance=0.05, failure_reward=-1.0, success_reward=0.0)


@pytest.fixture(scope="module")
def her_buffer():
    relabel = pytest.importorskip("amago_fast.relabel")
    obs, ach, des, act = _her_episodes(HER_EPISODES)
    buf = ReplayBuffer(
        {
            "observation": ((4,), np.float32),
            "achieved_goal": ((GOAL_DIM,), np.float32),
            "desired_goal": ((GOAL_DIM,), np.float32),
        },
        2,
        capacity=HER_EPISODES * HER_T,
        seed=0,
        relabeler=_her_relabeler(relabel),
    )
    for i in range(HER_EPISODES):
        rews = _sparse_reward(ach[i, 1:], des[i, 1:])
        rl2s = np.concatenate([np.r_[0.0, rews][:, None], np.r_[np.zeros((1, 2)), act[i]]], 1)
        buf.add_trajectory(
            {"observation": obs[i], "achieved_goal": ach[i], "desired_goal": des[i]},
            rl2s.astype(np.float32),
            np.arange(HER_T + 1),
            act[i],
            rews,
            np.zeros(HER_T, bool),
        )
    return buf, relabel


def test_her_amago_fast_sample(benchmark, her_buffer):
    """End to end: choose trajectories -> relabel (C++) -> cut windows (ReplayBuffer's
    relabel path)."""
    buf, _ = her_buffer
    benchmark.group = "peers: single-goal HER"
    window = 16
    batch = benchmark(buf.sample, HER_BATCH // window, window)
    assert batch.actions.shape == (HER_BATCH // window, window, 2)
    benchmark.extra_info.update(
        transitions_per_call=int(batch.mask[:, 1:].sum()), peer="amago_fast", episodes=HER_EPISODES
    )


def test_her_amago_fast_relabel_kernel(benchmark, her_buffer):
    """The HER step alone: relabel HER_BATCH // 16 whole stored trajectories (16 x 50 steps)."""
    buf, relabel = her_buffer
    benchmark.group = "peers: single-goal HER"
    her = _her_relabeler(relabel)
    ids = buf.trajectory_ids()[: HER_BATCH // 16]
    trajs = [buf.trajectory(int(t)) for t in ids]
    out = benchmark(her.relabel, trajs, 0)
    benchmark.extra_info.update(
        transitions_per_call=int(sum(len(t["rews"]) for t in out)),
        peer="amago_fast (kernel only)",
        episodes=HER_EPISODES,
    )


def test_her_sb3(benchmark):
    pytest.importorskip("stable_baselines3")
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv
    from stable_baselines3.her import HerReplayBuffer

    class GoalEnv(gym.Env):
        """Minimal goal env: SB3's HER only calls compute_reward on it."""

        observation_space = gym.spaces.Dict(
            {
                "observation": gym.spaces.Box(-np.inf, np.inf, (4,), np.float32),
                "achieved_goal": gym.spaces.Box(-np.inf, np.inf, (GOAL_DIM,), np.float32),
                "desired_goal": gym.spaces.Box(-np.inf, np.inf, (GOAL_DIM,), np.float32),
            }
        )
        action_space = gym.spaces.Box(-1, 1, (2,), np.float32)

        def compute_reward(self, achieved_goal, desired_goal, info):
            return _sparse_reward(achieved_goal, desired_goal)

        def reset(self, *, seed=None, options=None):
            return self.observation_space.sample(), {}

        def step(self, action):
            return self.observation_space.sample(), 0.0, False, False, {}

    benchmark.group = "peers: single-goal HER"
    env = DummyVecEnv([GoalEnv])
    rb = HerReplayBuffer(
        HER_EPISODES * HER_T,
        GoalEnv.observation_space,
        GoalEnv.action_space,
        env=env,
        n_sampled_goal=4,
        goal_selection_strategy="future",
    )
    obs, ach, des, act = _her_episodes(HER_EPISODES)
    for i in range(HER_EPISODES):
        rews = _sparse_reward(ach[i, 1:], des[i, 1:])
        for t in range(HER_T):
            o = {
                "observation": obs[i, t : t + 1],
                "achieved_goal": ach[i, t : t + 1],
                "desired_goal": des[i, t : t + 1],
            }
            o2 = {
                "observation": obs[i, t + 1 : t + 2],
                "achieved_goal": ach[i, t + 1 : t + 2],
                "desired_goal": des[i, t + 1 : t + 2],
            }
            last = t == HER_T - 1
            rb.add(o, o2, act[i, t : t + 1], rews[t : t + 1], np.array([last]), [{"TimeLimit.truncated": last}])
    out = benchmark(rb.sample, HER_BATCH)
    assert out.rewards.shape == (HER_BATCH, 1)
    benchmark.extra_info.update(transitions_per_call=HER_BATCH, peer="stable-baselines3", episodes=HER_EPISODES)

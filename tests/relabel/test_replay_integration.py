"""MultiGoalRelabeler inside ReplayBuffer.sample, on MazeRunner rollouts.

Runs once the replay component (amago_fast.replay) is installed; skipped before that."""

from __future__ import annotations

import numpy as np
import pytest

replay = pytest.importorskip("amago_fast.replay", reason="needs the ReplayBuffer component")

from amago_fast.envs.mazerunner import MazeRunner  # noqa: E402
from amago_fast.relabel import MultiGoalRelabeler  # noqa: E402

K = 2


def _rollout(env, seed, rng):
    obs, _ = env.reset(seed=seed)
    keys = {k: [v] for k, v in obs.items()}
    rl2s, acts, rews, dones = [np.zeros(5, np.float32)], [], [], []
    while True:
        a = int(rng.integers(4))
        obs, r, term, trunc, _ = env.step(a)
        for k, v in obs.items():
            keys[k].append(v)
        onehot = np.eye(4, dtype=np.float32)[a]
        rl2s.append(np.concatenate([[r], onehot]).astype(np.float32))
        acts.append(onehot), rews.append(r), dones.append(term)
        if term or trunc:
            break
    return dict(
        obs={k: np.stack(v) for k, v in keys.items()},
        rl2s=np.stack(rl2s),
        time_idxs=np.arange(len(rews) + 1),
        actions=np.stack(acts),
        rews=np.array(rews, np.float32),
        dones=np.array(dones),
    )


@pytest.fixture
def filled():
    def make(strategy):
        env, rng = MazeRunner(size=7, goals=K, horizon=60), np.random.default_rng(0)
        buf = replay.ReplayBuffer.from_spaces(
            env.observation_space, env.action_space, capacity=20_000, seed=3, relabeler=MultiGoalRelabeler(K, strategy)
        )
        trajs = [_rollout(env, s, rng) for s in range(40)]
        for t in trajs:
            buf.add_trajectory(**t)
        return buf, trajs

    return make


def _successes_and_check_rule(batch):
    """Every real transition of every window obeys the multi-goal reward rule."""
    goals, ach = batch.obs["goals"].numpy(), batch.obs["achieved"].numpy()
    rews, rl2s, mask = batch.rews.numpy()[..., 0], batch.rl2s.numpy(), batch.mask.numpy()
    total = 0
    for b in range(goals.shape[0]):
        for j in range(rews.shape[1]):
            if not mask[b, j + 1]:
                continue
            a = int(goals[b, j, :, 2].sum())
            assert a < K, "a transition after the last goal was reached"
            hit = bool((ach[b, j + 1] == goals[b, j, a, :2]).all())
            assert rews[b, j] == float(hit) and rl2s[b, j + 1, 0] == rews[b, j]
            assert goals[b, j + 1, :, 2].sum() == a + hit
            total += hit
    return total


def test_sampled_windows_follow_the_reward_rule(filled):
    found = {}
    for strategy in ("none", "some", "all"):
        buf, _ = filled(strategy)
        found[strategy] = sum(_successes_and_check_rule(buf.sample(64, 16, "both")) for _ in range(3))
    assert found["all"] > found["some"] > found["none"]


def test_sampling_never_changes_stored_trajectories(filled):
    buf, trajs = filled("all")
    for _ in range(3):
        buf.sample(32, 12, "both")
    for tid, t in zip(buf.trajectory_ids(), trajs):
        stored = buf.trajectory(int(tid))
        for key in ("rews", "dones", "rl2s"):
            np.testing.assert_array_equal(stored[key], t[key])
        np.testing.assert_array_equal(stored["obs"]["goals"], t["obs"]["goals"])

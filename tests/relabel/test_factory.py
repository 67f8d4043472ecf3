"""relabeler_for: --relabel some|all|none from an env's observation space."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from amago_fast.envs.mazerunner import MazeRunner
from amago_fast.relabel import MultiGoalRelabeler, relabeler_for


def test_builds_from_mazerunner_space():
    space = MazeRunner(size=7, goals=3).observation_space
    r = relabeler_for("some", space)
    assert isinstance(r, MultiGoalRelabeler) and r.num_goals == 3 and r.strategy == "some"
    assert relabeler_for("all", space).strategy == "all"
    assert relabeler_for("none", space) is None


def test_rejects_bad_names_and_spaces():
    with pytest.raises(ValueError, match="strategy"):
        relabeler_for("most", MazeRunner().observation_space)
    box = gym.spaces.Box(0, 1, (3,))
    with pytest.raises(ValueError, match="observation_space"):
        relabeler_for("some", box)
    bad = gym.spaces.Dict({"goals": gym.spaces.Box(0, 1, (2, 3)), "achieved": gym.spaces.Box(0, 1, (3,))})
    with pytest.raises(ValueError, match="achieved"):
        relabeler_for("all", bad)


def test_relabels_mazerunner_rollouts():
    env, rng = MazeRunner(size=5, goals=2, horizon=30), np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    rows = [obs]
    acts, rews, dones = [], [], []
    for _ in range(30):
        a = int(rng.integers(4))
        obs, r, term, trunc, _ = env.step(a)
        rows.append(obs), acts.append(np.eye(4, dtype=np.float32)[a]), rews.append(r), dones.append(term)
        if term or trunc:
            break
    T = len(rews)
    rl2s = np.zeros((T + 1, 5), np.float32)
    rl2s[1:, 0], rl2s[1:, 1:] = rews, acts
    traj = {
        "obs": {k: np.stack([o[k] for o in rows]) for k in rows[0]},
        "rl2s": rl2s,
        "time_idxs": np.arange(T + 1),
        "actions": np.stack(acts),
        "rews": np.array(rews, np.float32),
        "dones": np.array(dones),
    }
    (out,) = relabeler_for("all", env.observation_space).relabel([traj], 0)
    assert out["rews"].sum() == 2 and out["dones"][-1]

"""Random trajectory generators and checkers shared by the relabel tests."""

from __future__ import annotations

import zlib
from types import SimpleNamespace

import numpy as np
import pytest

GRID = 3  # achieved values live on a small grid so that goals are often reached


def _achieved_walk(rng, T, d, dtype, tol, grid=GRID):
    """A lazy random walk on {0..grid-1}^d; float versions get noise well inside tol."""
    pos = rng.integers(0, grid, size=d)
    rows = []
    for _ in range(T + 1):
        rows.append(pos.copy())
        if rng.random() < 0.6:
            j = rng.integers(d)
            pos[j] = np.clip(pos[j] + rng.choice([-1, 1]), 0, grid - 1)
    ach = np.array(rows)
    if np.issubdtype(dtype, np.floating):
        ach = ach + rng.uniform(-tol / 3, tol / 3, size=ach.shape) if tol > 0 else ach
    return ach.astype(dtype)


def _rl2s(rng, T, rews, num_actions=2):
    rl2s = np.zeros((T + 1, 1 + num_actions), dtype=np.float32)
    rl2s[1:, 1:] = rng.standard_normal((T, num_actions))
    rl2s[1:, 0] = rews
    return rl2s


def make_multigoal_traj(rng, T, k, d, dtype=np.int64, tol=0.0, nested=False, column=False, consistent=True, grid=GRID):
    """A trajectory that follows the multi-goal reward rule (consistent=True: an env
    rollout, possibly ended early by reaching all k goals) or arbitrary data."""
    ach = _achieved_walk(rng, T, d, dtype, tol, grid)
    real = rng.integers(0, grid, size=(k, d)).astype(dtype)
    if consistent:
        goals = np.zeros((T + 1, k, d + 1), dtype=dtype)
        goals[:, :, :d] = real
        rews = np.zeros(T, dtype=np.float32)
        dones = np.zeros(T, dtype=bool)
        a, end = 0, T
        for t in range(T):
            if a < k and np.all(np.abs(ach[t + 1].astype(np.float64) - real[a]) <= tol):
                rews[t] = 1.0
                a += 1
                goals[t + 1 :, :a, d] = 1
                if a == k:
                    dones[t], end = True, t + 1
                    break
        if end == T and rng.random() < 0.5:
            dones[T - 1 :] = True  # a time-limit terminal, kept as stored
        T = end
        goals, ach, rews, dones = goals[: T + 1], ach[: T + 1], rews[:T], dones[:T]
    else:
        goals = rng.integers(0, grid, size=(T + 1, k, d + 1)).astype(dtype)
        rews = rng.integers(0, 2, size=T).astype(np.float32)
        dones = rng.random(T) < 0.1
    obs = {
        "obs": rng.standard_normal((T + 1, 4)).astype(np.float32),
        "goals": goals,
        "achieved": ach,
    }
    traj = {
        "rl2s": _rl2s(rng, T, rews),
        "time_idxs": np.arange(T + 1, dtype=np.int64),
        "actions": rng.standard_normal((T, 2)).astype(np.float32),
        "rews": rews[:, None] if column else rews,
        "dones": dones[:, None] if column else dones,
    }
    if nested:
        traj["obs"] = obs
    else:
        traj.update(obs)
    return traj


def make_her_traj(rng, T, d, dtype=np.int64, tol=0.0):
    """A single-goal trajectory: a random walk and a fixed desired goal."""
    ach = _achieved_walk(rng, T, d, dtype, tol)
    goal = rng.integers(0, GRID, size=d).astype(dtype)
    rews = np.array(
        [float(np.all(np.abs(ach[t + 1].astype(np.float64) - goal) <= tol)) for t in range(T)], dtype=np.float32
    )
    return {
        "observation": rng.standard_normal((T + 1, 3)).astype(np.float32),
        "desired_goal": np.repeat(goal[None], T + 1, axis=0),
        "achieved_goal": ach,
        "rl2s": _rl2s(rng, T, rews),
        "time_idxs": np.arange(T + 1, dtype=np.int64),
        "actions": rng.standard_normal((T, 2)).astype(np.float32),
        "rews": rews,
        "dones": np.zeros(T, dtype=bool),
    }


def obs_of(traj):
    return traj["obs"] if isinstance(traj.get("obs"), dict) else traj


def assert_traj_equal(a, b):
    """Same keys, same arrays (values, dtypes and shapes), exactly."""
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert_traj_equal(a[key], b[key])
            continue
        assert a[key].dtype == b[key].dtype, key
        assert a[key].shape == b[key].shape, key
        assert np.array_equal(a[key], b[key]), key


def check_multigoal_consistent(traj, k, tol):
    """The trajectory obeys the multi-goal reward rule: flags, rewards, rl2s, done, cut."""
    obs = obs_of(traj)
    goals, ach = obs["goals"], obs["achieved"].reshape(len(obs["goals"]), -1)
    rews, dones = traj["rews"].reshape(-1), traj["dones"].reshape(-1)
    T, d = len(rews), goals.shape[2] - 1
    assert goals.shape[0] == T + 1 and traj["rl2s"].shape[0] == T + 1
    assert (goals[:, :, :d] == goals[0, :, :d]).all(), "instruction changes within the trajectory"
    a = 0
    for t in range(T + 1):
        assert list(goals[t, :, d]) == [1] * a + [0] * (k - a), f"flags at row {t}"
        if t == T:
            break
        hit = a < k and bool(np.all(np.abs(ach[t + 1].astype(np.float64) - goals[t, a, :d]) <= tol))
        assert rews[t] == float(hit), f"reward at {t}"
        assert traj["rl2s"][t + 1, 0] == rews[t]
        a += hit
        if a == k:
            assert t == T - 1, "trajectory continues after the last goal"
            assert dones[t]
    return int(rews.sum())


@pytest.fixture
def rng(request):
    # one reproducible stream per test
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture
def h():
    """The helpers above (test modules cannot import conftest under importlib mode)."""
    return SimpleNamespace(
        make_multigoal_traj=make_multigoal_traj,
        make_her_traj=make_her_traj,
        obs_of=obs_of,
        assert_traj_equal=assert_traj_equal,
        check_multigoal_consistent=check_multigoal_consistent,
    )

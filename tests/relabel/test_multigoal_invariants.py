"""Properties of multi-goal relabeling that hold whatever the random draws."""

from __future__ import annotations

import numpy as np
import pytest

from amago_fast import _C
from amago_fast.relabel import MultiGoalRelabeler


def _batch(h, rng, n=30, k=3, **kw):
    return [h.make_multigoal_traj(rng, int(rng.integers(1, 60)), k, 2, **kw) for _ in range(n)]


def _snapshot(trajs):
    return [{k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in t.items()} for t in trajs]


@pytest.mark.parametrize("backend", ["cpp", "python"])
@pytest.mark.parametrize("strategy", ["some", "all"])
@pytest.mark.parametrize("dtype,tol", [(np.int64, 0.0), (np.float32, 0.2)], ids=["int", "float"])
def test_relabeled_trajectories_obey_their_reward_rule(h, rng, backend, strategy, dtype, tol):
    trajs = _batch(h, rng, k=3, dtype=dtype, tol=tol)
    out = MultiGoalRelabeler(3, strategy, tolerance=tol, backend=backend).relabel(trajs, 0)
    for before, after in zip(trajs, out):
        n_before = h.check_multigoal_consistent(before, 3, tol)
        n_after = h.check_multigoal_consistent(after, 3, tol)
        assert n_after >= n_before  # hindsight goals only add successes
        T, L = len(before["rews"]), len(after["rews"])
        assert L <= T
        for key in ("obs", "achieved", "actions", "time_idxs"):
            assert np.array_equal(after[key], before[key][: len(after[key])])
        assert np.array_equal(after["rl2s"][:, 1:], before["rl2s"][: L + 1, 1:])


def test_none_is_the_identity(h, rng):
    trajs = _batch(h, rng)
    out = MultiGoalRelabeler(3, "none").relabel(trajs, 0)
    assert all(a is b for a, b in zip(out, trajs))


@pytest.mark.parametrize("backend", ["cpp", "python"])
def test_zero_hindsight_goals_reproduce_consistent_data(h, rng, backend):
    # "some" draws h = floor(u0 * (k - n + 1)); u0 = 0 forces h = 0: a pure replay
    trajs = _batch(h, rng, k=4)
    relabeler = MultiGoalRelabeler(4, "some", backend=backend)
    fields = [relabeler._fields(t, i) for i, t in enumerate(trajs)]
    draws = rng.random((len(trajs), 5))
    draws[:, 0] = 0.0
    for t, r in zip(trajs, relabeler._run(fields, draws)):
        new_goals, rews, dones, rl2s, L = r
        assert L == len(t["rews"])
        assert np.array_equal(new_goals, t["goals"]) and np.array_equal(rews, t["rews"])
        assert np.array_equal(dones, t["dones"]) and np.array_equal(rl2s, t["rl2s"])


@pytest.mark.parametrize("strategy", ["some", "all"])
def test_fully_successful_trajectory_is_unchanged(h, rng, strategy):
    trajs = [t for t in _batch(h, rng, n=80, k=2) if t["rews"].sum() == 2]
    assert len(trajs) > 5
    for seed in range(3):
        for t, o in zip(trajs, MultiGoalRelabeler(2, strategy).relabel(trajs, seed)):
            h.assert_traj_equal(o, t)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_all_yields_k_successes_when_enough_steps(h, rng, k):
    trajs = [h.make_multigoal_traj(rng, int(rng.integers(k, 50)), k, 2, grid=6) for _ in range(40)]
    for t, o in zip(trajs, MultiGoalRelabeler(k, "all").relabel(trajs, 1)):
        assert o["rews"].sum() == k and o["dones"][-1]
        assert len(o["rews"]) <= len(t["rews"])


def test_all_with_too_few_steps_adds_what_it_can(h, rng):
    # T = 2 steps, k = 5 goals, nothing reached: at most 2 hindsight goals exist
    trajs = [h.make_multigoal_traj(rng, 2, 5, 2, grid=50) for _ in range(20)]
    for t, o in zip(trajs, MultiGoalRelabeler(5, "all").relabel(trajs, 2)):
        assert list(o["rews"]) == [1.0, 1.0]  # both steps became goals 1 and 2
        assert np.array_equal(o["dones"], t["dones"])  # not all 5 reached: dones as stored


def test_some_draws_every_number_of_goals(h, rng):
    # h ~ U{0..k-n}: on never-successful trajectories every success count 0..k appears
    trajs = [h.make_multigoal_traj(rng, 40, 3, 2, grid=50) for _ in range(300)]
    trajs = [t for t in trajs if t["rews"].sum() == 0]
    counts = np.bincount([int(o["rews"].sum()) for o in MultiGoalRelabeler(3).relabel(trajs, 4)], minlength=4)
    assert (counts > len(trajs) / 8).all(), counts  # roughly uniform, each near 1/4


def test_storage_is_never_written_and_outputs_are_new(h, rng):
    trajs = _batch(h, rng, dtype=np.float64, tol=0.1)
    for t in trajs:
        for v in t.values():
            v.flags.writeable = False  # read-only views, like a replay buffer's
    before = _snapshot(trajs)
    out = MultiGoalRelabeler(3, "all", tolerance=0.1).relabel(trajs, 0)
    for t, b, o in zip(trajs, before, out):
        h.assert_traj_equal(t, b)
        for key in ("goals", "rews", "dones", "rl2s"):
            assert not np.shares_memory(o[key], t[key]), key
            assert o[key].flags.writeable
        assert np.shares_memory(o["obs"], t["obs"])  # unchanged fields stay views


def test_seed_determines_output(h, rng):
    trajs = _batch(h, rng, grid=8)
    relabeler = MultiGoalRelabeler(3, "some")
    a, b, c = (relabeler.relabel(trajs, s) for s in (5, 5, 6))
    for x, y in zip(a, b):
        h.assert_traj_equal(x, y)
    assert any(not np.array_equal(x["goals"], z["goals"]) or len(x["rews"]) != len(z["rews"]) for x, z in zip(a, c))


def test_hindsight_goals_come_from_achieved_rows(h, rng):
    trajs = _batch(h, rng, grid=30)
    for t, o in zip(trajs, MultiGoalRelabeler(3, "all").relabel(trajs, 8)):
        achieved = {tuple(row) for row in t["achieved"][1:]}
        real = [tuple(g) for g in t["goals"][0, :, :2]]
        for slot, goal in enumerate(map(tuple, o["goals"][0, :, :2])):
            assert goal in achieved or goal == real[slot]


def test_empty_batch_and_zero_length_trajectory(h, rng):
    assert MultiGoalRelabeler(2).relabel([], 0) == []
    t = h.make_multigoal_traj(rng, 0, 2, 2)
    (o,) = MultiGoalRelabeler(2, "all").relabel([t], 0)
    h.assert_traj_equal(o, t)
    assert _C.relabel_multigoal([], [], [], [], np.zeros((0, 3)), 2, 2, 1, 0.0, 1) == []


def _distinct_walk_traj(T, k):
    """achieved row t = (t, 0): every row distinct, so a goal names its row; real goals
    are never reached."""
    ach = np.stack([np.arange(T + 1), np.zeros(T + 1, np.int64)], axis=1)
    goals = np.zeros((T + 1, k, 3), np.int64)
    goals[:, :, :2] = -1
    return {
        "goals": goals,
        "achieved": ach,
        "rl2s": np.zeros((T + 1, 3), np.float32),
        "actions": np.zeros((T, 2), np.float32),
        "rews": np.zeros(T, np.float32),
        "dones": np.zeros(T, bool),
    }


@pytest.mark.parametrize("backend", ["cpp", "python"])
def test_hindsight_rows_are_uniform_distinct_subsets(backend):
    # k = 2, T = 5, "all": the 2 alternative rows are a uniform 2-subset of rows 1..5
    # (10 subsets); the instruction lists them in row order.
    trajs = [_distinct_walk_traj(5, 2)] * 4000
    out = MultiGoalRelabeler(2, "all", backend=backend).relabel(trajs, 0)
    pairs = [tuple(o["goals"][0, :, 0]) for o in out]
    assert all(a < b for a, b in pairs)
    counts = np.array([pairs.count(p) for p in {(a, b) for a in range(1, 6) for b in range(a + 1, 6)}])
    assert len(counts) == 10 and counts.min() > 4000 / 10 * 0.8 and counts.max() < 4000 / 10 * 1.2
    assert all(len(o["rews"]) == b for o, (_, b) in zip(out, pairs))  # cut at the 2nd goal

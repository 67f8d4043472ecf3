"""The C++ multi-goal kernel equals the pure-Python reference exactly."""

from __future__ import annotations

import numpy as np
import pytest

from amago_fast.relabel import MultiGoalRelabeler

DTYPES = {"i32": np.int32, "i64": np.int64, "f32": np.float32, "f64": np.float64}


def _both(h, trajs, seed, **kw):
    cpp = MultiGoalRelabeler(backend="cpp", **kw).relabel(trajs, seed)
    ref = MultiGoalRelabeler(backend="python", **kw).relabel(trajs, seed)
    assert len(cpp) == len(ref) == len(trajs)
    for c, r in zip(cpp, ref):
        h.assert_traj_equal(c, r)
    return cpp


@pytest.mark.parametrize("strategy", ["some", "all"])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("dtype", list(DTYPES), ids=list(DTYPES))
def test_matches_reference_random_batches(h, rng, strategy, k, dtype):
    dt = DTYPES[dtype]
    tol = 0.1 if np.issubdtype(dt, np.floating) else 0.0
    trajs = []
    d = int(rng.integers(1, 4))  # one goal dim per batch (the relabeler requires it)
    for i in range(12):
        T = int(rng.choice([1, 2, 3, 5, 17, 64, 129]))
        trajs.append(h.make_multigoal_traj(rng, T, k, d, dt, tol, consistent=bool(i % 3)))
    for seed in (0, 1, 12345):
        _both(h, trajs, seed, num_goals=k, strategy=strategy, tolerance=tol)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("dtype", ["i64", "f32"])
def test_matches_reference_goal_dims(h, rng, d, dtype):
    dt = DTYPES[dtype]
    tol = 0.25 if dtype == "f32" else 0.0
    trajs = [h.make_multigoal_traj(rng, int(rng.integers(1, 80)), 3, d, dt, tol) for _ in range(10)]
    _both(h, trajs, 7, num_goals=3, strategy="some", tolerance=tol)


@pytest.mark.parametrize("T", [1, 500, 2000])
def test_matches_reference_long(h, rng, T):
    # a 25x25 grid: goals are rarely reached, so most of the T steps stay in the output
    trajs = [h.make_multigoal_traj(rng, T, 3, 2, np.int32, consistent=c, grid=25) for c in (True, False)]
    _both(h, trajs, 3, num_goals=3, strategy="some")
    _both(h, trajs, 4, num_goals=3, strategy="all")


def test_matches_reference_nested_obs_and_column_fields(h, rng):
    trajs = [h.make_multigoal_traj(rng, int(rng.integers(1, 40)), 2, 2, nested=True, column=True) for _ in range(8)]
    out = _both(h, trajs, 11, num_goals=2, strategy="all")
    for o in out:
        assert o["rews"].ndim == 2 and o["dones"].ndim == 2 and "goals" in o["obs"]


def test_nonzero_tolerance_on_integer_goals(h, rng):
    # tolerance 1 on a 3-grid: most steps reach most goals
    trajs = [h.make_multigoal_traj(rng, 30, 4, 2, np.int64, consistent=False) for _ in range(6)]
    _both(h, trajs, 5, num_goals=4, strategy="some", tolerance=1.0)


def test_threads_do_not_change_results(h, rng):
    # > 64k rows in total, so the kernel really starts worker threads
    trajs = [
        h.make_multigoal_traj(rng, int(rng.integers(1500, 2500)), 3, 2, grid=25, consistent=False) for _ in range(48)
    ]
    one = MultiGoalRelabeler(3, num_threads=1).relabel(trajs, 9)
    many = MultiGoalRelabeler(3, num_threads=4).relabel(trajs, 9)
    for a, b in zip(one, many):
        h.assert_traj_equal(a, b)

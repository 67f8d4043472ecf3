"""Bad input raises a clear Python exception naming the argument, never a crash."""

from __future__ import annotations

import numpy as np
import pytest

from amago_fast import _C
from amago_fast.relabel import HERRelabeler, MultiGoalRelabeler


@pytest.fixture
def traj(h, rng):
    return h.make_multigoal_traj(rng, 10, 2, 2, consistent=False)  # exactly T = 10


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(num_goals=0), "num_goals"),
        (dict(num_goals=2.0), "num_goals"),
        (dict(num_goals=2, strategy="most"), "strategy"),
        (dict(num_goals=2, tolerance=-1.0), "tolerance"),
        (dict(num_goals=2, tolerance=float("nan")), "tolerance"),
        (dict(num_goals=2, backend="gpu"), "backend"),
        (dict(num_goals=2, num_threads=0), "num_threads"),
    ],
)
def test_multigoal_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiGoalRelabeler(**kwargs)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(strategy="past"), "strategy"),
        (dict(prob=1.5), "prob"),
        (dict(tolerance=-0.1), "tolerance"),
        (dict(success_reward=float("inf")), "success_reward"),
    ],
)
def test_her_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HERRelabeler(**kwargs)


def test_batch_argument_errors(traj):
    r = MultiGoalRelabeler(2)
    with pytest.raises(TypeError, match="trajs"):
        r.relabel(traj, 0)  # a dict, not a list of dicts
    with pytest.raises(TypeError, match=r"trajs\[1\]"):
        r.relabel([traj, 3], 0)
    with pytest.raises(TypeError, match="rng_seed"):
        r.relabel([traj], 0.5)
    with pytest.raises(ValueError, match="rng_seed"):
        r.relabel([traj], -1)


def _bad(traj, **changes):
    t = dict(traj)
    t.update(changes)
    return t


@pytest.mark.parametrize("backend", ["cpp", "python"])
def test_trajectory_field_errors(traj, backend):
    r = MultiGoalRelabeler(2, backend=backend)
    cases = [
        (ValueError, "goals", {k: v for k, v in traj.items() if k != "goals"}),
        (ValueError, "achieved", {k: v for k, v in traj.items() if k != "achieved"}),
        (TypeError, "goals", _bad(traj, goals=traj["goals"].tolist())),
        (TypeError, "goals", _bad(traj, goals=traj["goals"].astype(np.uint8))),
        (TypeError, "achieved", _bad(traj, achieved=traj["achieved"].astype(np.float32))),
        (ValueError, "num_goals=2", _bad(traj, goals=np.zeros((11, 3, 3), np.int64))),
        (ValueError, "goal_dim", _bad(traj, achieved=np.zeros((11, 3), np.int64))),
        (ValueError, "achieved", _bad(traj, achieved=np.zeros((5, 2), np.int64))),
        (ValueError, "rl2s", _bad(traj, rl2s=traj["rl2s"].astype(np.float64))),
        (TypeError, "dones", _bad(traj, dones=traj["dones"].astype(np.float32))),
        (ValueError, "dones", _bad(traj, dones=traj["dones"][:-1])),
        (ValueError, "rews", _bad(traj, rews=traj["rews"][:-1])),
    ]
    for exc, match, bad in cases:
        with pytest.raises(exc, match=match):
            r.relabel([traj, bad], 0)


def test_mixed_batches_are_rejected(h, rng, traj):
    other = h.make_multigoal_traj(rng, 10, 2, 3, consistent=False)
    with pytest.raises(ValueError, match="goal_dim"):
        MultiGoalRelabeler(2).relabel([traj, other], 0)
    other = h.make_multigoal_traj(rng, 10, 2, 2, dtype=np.int32, consistent=False)
    with pytest.raises(TypeError, match="dtype"):
        MultiGoalRelabeler(2).relabel([traj, other], 0)


def test_non_native_byte_order_is_rejected(traj):
    bad = _bad(traj, goals=traj["goals"].astype(">i8"), achieved=traj["achieved"].astype(">i8"))
    with pytest.raises(TypeError, match="byte order"):
        MultiGoalRelabeler(2).relabel([bad], 0)


def test_non_contiguous_inputs_are_handled(h, traj):
    wide = np.zeros((11, 4), np.int64)
    wide[:, ::2] = traj["achieved"]
    t = _bad(traj, achieved=wide[:, ::2])  # a strided view
    a = MultiGoalRelabeler(2, "all").relabel([t], 0)
    b = MultiGoalRelabeler(2, "all").relabel([traj], 0)
    h.assert_traj_equal(
        {k: v for k, v in a[0].items() if k != "achieved"}, {k: v for k, v in b[0].items() if k != "achieved"}
    )


def test_her_field_errors(h, rng):
    t = h.make_her_traj(rng, 10, 2)
    with pytest.raises(ValueError, match="same number"):
        HERRelabeler().relabel([_bad(t, desired_goal=np.zeros((11, 3), np.int64))], 0)


def test_native_entry_points_reject_bad_shapes(traj):
    g, a, r, d = traj["goals"], traj["achieved"], traj["rl2s"], traj["dones"]
    u = np.zeros((1, 3))
    with pytest.raises(ValueError, match="draws"):
        _C.relabel_multigoal([g], [a], [r], [d], np.zeros((1, 2)), 2, 2, 1, 0.0, 1)
    with pytest.raises(ValueError, match="goals"):
        _C.relabel_multigoal([g], [a], [r], [d], u, 3, 2, 1, 0.0, 1)
    with pytest.raises(ValueError, match="achieved"):
        _C.relabel_multigoal([g], [a[:-1]], [r], [d], u, 2, 2, 1, 0.0, 1)
    with pytest.raises(ValueError, match="dones"):
        _C.relabel_multigoal([g], [a], [r], [d[:-1]], u, 2, 2, 1, 0.0, 1)
    with pytest.raises(ValueError, match="rl2s"):
        _C.relabel_multigoal([g], [a], [r[:, ::2]], [d], u, 2, 2, 1, 0.0, 1)
    with pytest.raises(ValueError, match="one entry"):
        _C.relabel_multigoal([g], [], [r], [d], u, 2, 2, 1, 0.0, 1)
    with pytest.raises(ValueError, match="draws"):
        _C.relabel_her([a], [a], [r], [d], u, 2, 1, 1.0, 0.0, 1.0, 0.0, False, 1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        _C.relabel_multigoal([g], [a], [r], [d], np.full((1, 3), np.nan), 2, 2, 1, 0.0, 1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        _C.relabel_her([a], [a], [r], [d], np.full((1, 2), -0.5), 2, 1, 1.0, 0.0, 1.0, 0.0, False, 1)
    with pytest.raises(ValueError, match="goal_dim"):
        _C.relabel_her([a], [a], [r], [d], np.zeros((1, 2)), 3, 1, 1.0, 0.0, 1.0, 0.0, False, 1)

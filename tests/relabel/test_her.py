"""Single-goal HER: the C++ kernel equals the reference exactly, and its invariants."""

from __future__ import annotations

import numpy as np
import pytest

from amago_fast.relabel import HERRelabeler

DTYPES = {"i32": np.int32, "i64": np.int64, "f32": np.float32, "f64": np.float64}
STRATEGIES = ["final", "future", "episode"]


def _batch(h, rng, n=25, d=2, dtype=np.int64, tol=0.0, max_T=80):
    return [h.make_her_traj(rng, int(rng.integers(1, max_T)), d, dtype, tol) for _ in range(n)]


@pytest.mark.parametrize("terminate", [False, True], ids=["noterm", "term"])
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("dtype", list(DTYPES), ids=list(DTYPES))
def test_matches_reference(h, rng, dtype, strategy, terminate):
    dt = DTYPES[dtype]
    tol = 0.1 if np.issubdtype(dt, np.floating) else 0.0
    for d in (1, 3):
        trajs = _batch(h, rng, d=d, dtype=dt, tol=tol)
        kw = dict(
            strategy=strategy,
            tolerance=tol,
            prob=0.7,
            success_reward=0.0,
            failure_reward=-1.0,
            terminate_on_success=terminate,
        )
        for seed in (0, 99):
            cpp = HERRelabeler(backend="cpp", **kw).relabel(trajs, seed)
            ref = HERRelabeler(backend="python", **kw).relabel(trajs, seed)
            for c, r in zip(cpp, ref):
                h.assert_traj_equal(c, r)


@pytest.mark.parametrize("T", [1, 2000])
def test_matches_reference_long(h, rng, T):
    trajs = [h.make_her_traj(rng, T, 2, np.float32, 0.05) for _ in range(4)]
    for strategy in STRATEGIES:
        kw = dict(strategy=strategy, tolerance=0.05, prob=1.0)
        cpp = HERRelabeler(backend="cpp", **kw).relabel(trajs, 1)
        ref = HERRelabeler(backend="python", **kw).relabel(trajs, 1)
        for c, r in zip(cpp, ref):
            h.assert_traj_equal(c, r)


def _check_reward_rule(traj, tol, success=1.0, failure=0.0):
    g = traj["desired_goal"]
    assert (g == g[0]).all()
    for t, r in enumerate(traj["rews"]):
        hit = bool(np.all(np.abs(traj["achieved_goal"][t + 1].astype(np.float64) - g[0]) <= tol))
        assert r == (success if hit else failure)
        assert traj["rl2s"][t + 1, 0] == r


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_relabeled_trajectories_obey_their_reward_rule(h, rng, strategy):
    trajs = _batch(h, rng, n=40)
    out = HERRelabeler(strategy, prob=1.0).relabel(trajs, 3)
    for t, o in zip(trajs, out):
        _check_reward_rule(o, 0.0)
        L, T = len(o["rews"]), len(t["rews"])
        if strategy == "episode":  # the goal is achieved at some step s in 1..T, not always the last
            assert o["rews"].max() == 1.0
        else:  # final / future: the kept sequence ends where the goal was achieved
            assert o["rews"][-1] == 1.0
        assert (L == T) if strategy != "future" else (1 <= L <= T)
        assert np.array_equal(o["observation"], t["observation"][: L + 1])


def test_final_goal_is_the_last_achieved(h, rng):
    trajs = _batch(h, rng)
    for t, o in zip(trajs, HERRelabeler("final", prob=1.0).relabel(trajs, 0)):
        assert (o["desired_goal"] == t["achieved_goal"][-1]).all()


def test_prob_zero_is_identity_and_prob_is_respected(h, rng):
    trajs = _batch(h, rng, n=400, max_T=5)
    assert all(a is b for a, b in zip(HERRelabeler(prob=0.0).relabel(trajs, 0), trajs))
    out = HERRelabeler(prob=0.3).relabel(trajs, 0)
    frac = np.mean([a is not b for a, b in zip(out, trajs)])
    assert 0.22 < frac < 0.38


def test_terminate_on_success_cuts_at_first_success(h, rng):
    trajs = _batch(h, rng, n=40)
    for o in HERRelabeler("episode", prob=1.0, terminate_on_success=True).relabel(trajs, 5):
        assert o["rews"][-1] == 1.0 and o["dones"][-1]
        assert o["rews"][:-1].sum() == 0


def test_storage_is_never_written(h, rng):
    trajs = _batch(h, rng, dtype=np.float32, tol=0.1)
    copies = [{k: v.copy() for k, v in t.items()} for t in trajs]
    for t in trajs:
        for v in t.values():
            v.flags.writeable = False
    HERRelabeler("future", tolerance=0.1, prob=1.0).relabel(trajs, 0)
    for t, c in zip(trajs, copies):
        h.assert_traj_equal(t, c)


def test_goal_arrays_with_extra_axes(h, rng):
    trajs = _batch(h, rng, d=2)
    for t in trajs:
        t["desired_goal"] = t["desired_goal"][:, None, :]  # (T+1, 1, 2)
        t["achieved_goal"] = t["achieved_goal"][:, None, :]
    out = HERRelabeler("final", prob=1.0).relabel(trajs, 0)
    ref = HERRelabeler("final", prob=1.0, backend="python").relabel(trajs, 0)
    for o, r in zip(out, ref):
        assert o["desired_goal"].shape[1:] == (1, 2)
        h.assert_traj_equal(o, r)


def test_threads_do_not_change_results(h, rng):
    trajs = [h.make_her_traj(rng, 2000, 2) for _ in range(48)]  # 96k rows: worker threads
    for strategy in STRATEGIES:
        one = HERRelabeler(strategy, prob=0.9, num_threads=1).relabel(trajs, 2)
        many = HERRelabeler(strategy, prob=0.9, num_threads=4).relabel(trajs, 2)
        for a, b in zip(one, many):
            h.assert_traj_equal(a, b)

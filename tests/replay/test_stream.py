"""StreamWriter: per-step writes from vectorized envs."""

from __future__ import annotations

import numpy as np
import pytest

from amago_fast import ReplayBuffer

OBS = {"x": ((2,), np.float32), "k": ((), np.int64)}
A = 2


def run_envs(buf, N, lengths, rng, max_steps=200):
    """Drive N fake envs whose episode e has lengths[e] steps; returns (committed ids, the
    trajectories each env produced as whole arrays) for comparison with add_trajectory."""
    w = buf.stream(N)
    step = lambda n: dict(
        obs={
            "x": rng.normal(size=(n, 2)).astype(np.float32),  # noqa: E731
            "k": rng.integers(0, 9, n),
        },
        rl2s=rng.normal(size=(n, 1 + A)).astype(np.float32),
        time_idxs=rng.integers(0, 50, n),
    )
    first = step(N)
    w.begin(**first)
    cur = [
        {
            "obs": {"x": [first["obs"]["x"][e]], "k": [first["obs"]["k"][e]]},
            "rl2s": [first["rl2s"][e]],
            "time_idxs": [first["time_idxs"][e]],
            "actions": [],
            "rews": [],
            "dones": [],
        }
        for e in range(N)
    ]
    remaining = list(lengths[:N])
    queue = list(lengths[N:])
    done_trajs, ids = [], []
    for _ in range(max_steps):
        if all(r is None for r in remaining):
            break
        act = rng.normal(size=(N, A)).astype(np.float32)
        rew = rng.normal(size=N)  # float64 in, stored as float32
        end = np.array([r == 1 for r in remaining])
        dones = end & (rng.random(N) < 0.5)
        nxt = step(N)
        ids += w.step(act, rew, dones, nxt["obs"], nxt["rl2s"], nxt["time_idxs"], end=end)
        for e in range(N):
            if remaining[e] is None:
                continue
            c = cur[e]
            c["actions"].append(act[e])
            c["rews"].append(rew[e])
            c["dones"].append(dones[e])
            c["obs"]["x"].append(nxt["obs"]["x"][e])
            c["obs"]["k"].append(nxt["obs"]["k"][e])
            c["rl2s"].append(nxt["rl2s"][e])
            c["time_idxs"].append(nxt["time_idxs"][e])
            remaining[e] -= 1
            if remaining[e] == 0:
                done_trajs.append(c)
                remaining[e] = queue.pop(0) if queue else None
                if remaining[e] is not None:
                    f = step(1)
                    ids += w.begin(**f, env_ids=[e])
                    cur[e] = {
                        "obs": {"x": [f["obs"]["x"][0]], "k": [f["obs"]["k"][0]]},
                        "rl2s": [f["rl2s"][0]],
                        "time_idxs": [f["time_idxs"][0]],
                        "actions": [],
                        "rews": [],
                        "dones": [],
                    }
        # envs with nothing left keep stepping with an open trajectory: give them a new
        # one so step() stays valid (their data is flushed at the end)
        for e in range(N):
            if remaining[e] is None and not w._open[e]:
                w.begin(**step(1), env_ids=[e])
    return w, ids, done_trajs


def test_streamed_trajectories_equal_their_arrays():
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(OBS, A, capacity=10_000)
    lengths = [3, 1, 7, 12, 5, 2, 9]
    _, ids, trajs = run_envs(buf, 3, lengths, rng)
    assert len(ids) == len(lengths) == len(trajs)
    by_content = {tuple(np.asarray(t["rews"], np.float32).tolist()): t for t in trajs}
    for tid in ids:
        v = buf.trajectory(tid)
        t = by_content[tuple(v["rews"].tolist())]
        np.testing.assert_array_equal(v["obs"]["x"], np.stack(t["obs"]["x"]))
        np.testing.assert_array_equal(v["obs"]["k"], np.asarray(t["obs"]["k"]))
        np.testing.assert_array_equal(v["rl2s"], np.stack(t["rl2s"]))
        np.testing.assert_array_equal(v["time_idxs"], np.asarray(t["time_idxs"]))
        np.testing.assert_array_equal(v["actions"], np.stack(t["actions"]))
        np.testing.assert_array_equal(v["dones"], np.asarray(t["dones"]))


def test_max_traj_len_splits_and_continues_from_last_observation():
    buf = ReplayBuffer(OBS, A, capacity=1000, max_traj_len=4)
    w = buf.stream(1)
    o = lambda v: (
        {"x": np.full((1, 2), v, np.float32), "k": np.array([v])},  # noqa: E731
        np.full((1, 1 + A), v, np.float32),
        np.array([v]),
    )
    w.begin(*o(0))
    ids = []
    for t in range(1, 11):
        ids += w.step(np.full((1, A), t, np.float32), [t], [False], *o(t))
    assert len(ids) == 2 and w.open_lengths.tolist() == [2]
    a, b = buf.trajectory(ids[0]), buf.trajectory(ids[1])
    assert a["time_idxs"].tolist() == [0, 1, 2, 3, 4] and b["time_idxs"].tolist() == [4, 5, 6, 7, 8]
    assert b["rl2s"][0, 0] == 4 and b["actions"][:, 0].tolist() == [5, 6, 7, 8]
    ids += w.flush()
    assert buf.trajectory(ids[2])["time_idxs"].tolist() == [8, 9, 10]
    assert w.open_lengths.tolist() == [-1]


def test_unbounded_trajectories_grow():
    buf = ReplayBuffer(OBS, A, capacity=1000)
    w = buf.stream(2)
    z = lambda n: (
        {"x": np.zeros((n, 2), np.float32), "k": np.zeros(n, np.int64)},  # noqa: E731
        np.zeros((n, 1 + A), np.float32),
        np.zeros(n, np.int64),
    )
    w.begin(*z(2))
    for t in range(300):
        w.step(np.full((2, A), t, np.float32), np.zeros(2), np.zeros(2, bool), *z(2))
    (tid0, tid1) = w.flush()
    assert buf.trajectory(tid0)["actions"][:, 0].tolist() == list(range(300))


def test_step_without_begin_names_the_envs():
    buf = ReplayBuffer(OBS, A, capacity=100)
    w = buf.stream(3)
    z = lambda n: (
        {"x": np.zeros((n, 2), np.float32), "k": np.zeros(n, np.int64)},  # noqa: E731
        np.zeros((n, 1 + A), np.float32),
        np.zeros(n, np.int64),
    )
    w.begin(*z(2), env_ids=[0, 2])
    with pytest.raises(ValueError, match=r"\[1\]"):
        w.step(np.zeros((3, A), np.float32), np.zeros(3), np.zeros(3, bool), *z(3))
    w.begin(*z(1), env_ids=[1])
    w.step(np.zeros((3, A), np.float32), np.zeros(3), np.array([True, False, False]), *z(3))
    with pytest.raises(ValueError, match=r"\[0\]"):
        w.step(np.zeros((3, A), np.float32), np.zeros(3), np.zeros(3, bool), *z(3))
    with pytest.raises(ValueError, match="env_ids"):
        w.begin(*z(1), env_ids=[3])
    w.begin(*z(1), env_ids=[0])
    with pytest.raises(ValueError, match="actions"):
        w.step(np.zeros((2, A), np.float32), np.zeros(3), np.zeros(3, bool), *z(3))

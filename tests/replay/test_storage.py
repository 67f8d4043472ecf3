"""FIFO eviction, the protected partition, trajectory views and mmap storage."""

from __future__ import annotations

import numpy as np
import pytest

from amago_fast import ReplayBuffer

OBS = {"x": ((2,), np.float32)}


def traj(T, value, A=1):
    """A trajectory whose every entry encodes ``value`` so any leak is visible."""
    return dict(
        obs={"x": np.full((T + 1, 2), value, np.float32)},
        rl2s=np.full((T + 1, 1 + A), value, np.float32),
        time_idxs=np.arange(T + 1),
        actions=np.full((T, A), value, np.float32),
        rews=np.full(T, value, np.float32),
        dones=np.zeros(T, bool),
    )


def test_fifo_evicts_whole_oldest_trajectories():
    buf = ReplayBuffer(OBS, 1, capacity=100, seed=0)
    lengths = [30, 30, 30, 25, 60, 5, 99, 1]
    live = []  # (id, T) expected to be stored, oldest first
    for i, T in enumerate(lengths):
        tid = buf.add_trajectory(**traj(T, i))
        live.append((tid, T))
        while sum(t for _, t in live) > 100:
            live.pop(0)
        assert buf.trajectory_ids().tolist() == [t for t, _ in live]
        assert buf.num_timesteps == sum(t for _, t in live) <= 100
        assert len(buf) == buf.num_timesteps and buf.num_trajectories == len(live)


def test_evicted_data_is_never_returned():
    buf = ReplayBuffer(OBS, 1, capacity=64, seed=1)
    rng = np.random.default_rng(0)
    for v in range(300):
        buf.add_trajectory(**traj(int(rng.integers(1, 40)), v))
        live_values = {float(buf.trajectory(i)["rews"][0]) for i in buf.trajectory_ids()}
        b = buf.sample(32, 8, "both")
        seen = set(np.unique(b.rl2s[b.mask].numpy()).tolist())
        assert seen <= live_values, (v, seen - live_values)
        for i in range(32):  # a window carries exactly one trajectory's value
            assert np.unique(b.rl2s[i][b.mask[i]].numpy()).size == 1


def test_many_tiny_trajectories_respect_the_row_limit():
    # Each trajectory also takes one observation row, so the row limit may evict early,
    # but stored transitions never exceed capacity and the newest data is kept.
    buf = ReplayBuffer(OBS, 1, capacity=50, seed=0)
    for v in range(500):
        tid = buf.add_trajectory(**traj(1, v))
        assert buf.num_timesteps <= 50 and buf.trajectory_ids()[-1] == tid
    ids = buf.trajectory_ids()
    assert np.array_equal(ids, np.arange(ids[0], ids[-1] + 1))  # a contiguous newest range
    assert all(buf.trajectory(i)["rews"][0] == i for i in ids)


def test_protected_is_never_evicted_and_has_its_own_capacity():
    buf = ReplayBuffer(OBS, 1, capacity=20, protected_capacity=30, seed=0)
    p1 = buf.add_trajectory(**traj(10, -1), protected=True)
    p2 = buf.add_trajectory(**traj(20, -2), protected=True)
    for v in range(50):
        buf.add_trajectory(**traj(7, v))
        assert p1 in buf.trajectory_ids() and p2 in buf.trajectory_ids()
    assert buf.num_timesteps == 30 + 14
    assert buf.trajectory(p2)["rews"][0] == -2
    with pytest.raises(ValueError, match="protected"):
        buf.add_trajectory(**traj(1, -3), protected=True)
    # protected windows are sampled too (uniform over all stored trajectories)
    b = buf.sample(400, 4)
    assert {p1, p2} <= set(b.traj_ids.tolist())


def test_protected_needs_protected_capacity():
    buf = ReplayBuffer(OBS, 1, capacity=20)
    with pytest.raises(ValueError, match="protected_capacity"):
        buf.add_trajectory(**traj(3, 0), protected=True)


def test_trajectory_views_are_zero_copy_and_read_only():
    buf = ReplayBuffer(OBS, 1, capacity=100)
    t = traj(5, 3.0)
    tid = buf.add_trajectory(**t)
    v = buf.trajectory(tid)
    assert v["obs"]["x"].shape == (6, 2) and v["actions"].shape == (5, 1) and v["rews"].shape == (5,)
    assert np.shares_memory(
        v["rl2s"], buf._arenas[0][buf.fields.index(next(f for f in buf.fields if f.name == "rl2s"))]
    )
    with pytest.raises(ValueError):
        v["rews"][0] = 1.0
    with pytest.raises(KeyError, match="not stored"):
        buf.trajectory(tid + 1)


def test_too_long_trajectory_is_refused():
    buf = ReplayBuffer(OBS, 1, capacity=10)
    with pytest.raises(ValueError, match="capacity"):
        buf.add_trajectory(**traj(11, 0))


def test_mmap_storage_matches_memory(tmp_path, filled_buffer):
    mem, _ = filled_buffer([5, 40, 17, 3, 90], capacity=120)
    mm, _ = filled_buffer([5, 40, 17, 3, 90], capacity=120, storage="mmap", path=tmp_path / "arena")
    assert sorted(p.suffix for p in (tmp_path / "arena").iterdir()) == [".npy"] * 8  # 3 obs keys + 5 fields, FIFO only
    for mode in ("none", "both"):
        x, y = mem.sample(33, 20, mode), mm.sample(33, 20, mode)
        assert np.array_equal(x.obs["image"].numpy(), y.obs["image"].numpy())
        assert np.array_equal(x.rl2s.numpy(), y.rl2s.numpy())


def test_concurrent_writer_and_sampler_never_see_torn_windows():
    import threading

    buf = ReplayBuffer({"x": ((256,), np.float32)}, 1, capacity=3000, seed=0, num_threads=2)
    T = 200

    def t(v):
        return dict(
            obs={"x": np.full((T + 1, 256), v, np.float32)},
            rl2s=np.full((T + 1, 2), v, np.float32),
            time_idxs=np.arange(T + 1),
            actions=np.full((T, 1), v, np.float32),
            rews=np.full(T, v, np.float32),
            dones=np.zeros(T, bool),
        )

    buf.add_trajectory(**t(0))
    stop, errors = threading.Event(), []

    def writer():
        v = 1
        while not stop.is_set():
            buf.add_trajectory(**t(v))  # evicts constantly: capacity holds 15 trajectories
            v += 1

    th = threading.Thread(target=writer)
    th.start()
    try:
        for _ in range(300):
            b = buf.sample(16, 64, "both")
            for i in range(16):
                vals = np.unique(b.obs["x"][i][b.mask[i]].numpy())
                if vals.size != 1 or vals[0] != b.actions[i, 0, 0]:
                    errors.append(vals)
    finally:
        stop.set()
        th.join()
    assert not errors, errors[:3]

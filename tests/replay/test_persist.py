"""save/load: round trip, RNG continuation, corruption, and crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from amago_fast import ReplayBuffer
from amago_fast.replay import persist


def same_batch(x, y) -> bool:
    keys = ("rl2s", "time_idxs", "actions", "rews", "dones", "mask", "traj_ids", "starts")
    return all(np.array_equal(getattr(x, k).numpy(), getattr(y, k).numpy()) for k in keys) and all(
        np.array_equal(x.obs[k].numpy(), y.obs[k].numpy()) for k in x.obs
    )


@pytest.mark.parametrize("storage", ["memory", "mmap"])
def test_round_trip_continues_the_random_stream(tmp_path, filled_buffer, make_traj, storage):
    # a wrapped ring (evictions) and a protected partition exercise the compaction
    buf, _ = filled_buffer([30, 7, 50, 12, 41, 3, 66], capacity=120, protected_capacity=40)
    buf.add_trajectory(**make_traj(np.random.default_rng(5), 25), protected=True)
    buf.sample(8, 10)
    buf.save(tmp_path / "snap")
    kw = {"storage": "mmap", "path": tmp_path / "arena"} if storage == "mmap" else {}
    new = ReplayBuffer.load(tmp_path / "snap", **kw)
    assert new.trajectory_ids().tolist() == buf.trajectory_ids().tolist()
    assert new.num_timesteps == buf.num_timesteps and new.capacity == buf.capacity
    for i in buf.trajectory_ids():
        a, b = buf.trajectory(i), new.trajectory(i)
        for k in ("rl2s", "time_idxs", "actions", "rews", "dones"):
            np.testing.assert_array_equal(a[k], b[k])
        for k in a["obs"]:
            np.testing.assert_array_equal(a["obs"][k], b["obs"][k])
    for mode in ("none", "both", "left", "right"):
        assert same_batch(buf.sample(16, 9, mode), new.sample(16, 9, mode))
    # both keep evolving identically: same ids, same evictions
    t = make_traj(np.random.default_rng(9), 70)
    assert buf.add_trajectory(**t) == new.add_trajectory(**t)
    assert new.trajectory_ids().tolist() == buf.trajectory_ids().tolist()
    assert same_batch(buf.sample(16, 30, "both"), new.sample(16, 30, "both"))


def test_save_replaces_previous_snapshot(tmp_path, filled_buffer):
    buf, _ = filled_buffer([10, 20])
    buf.save(tmp_path / "s")
    buf2, _ = filled_buffer([5])
    buf2.save(tmp_path / "s")
    assert ReplayBuffer.load(tmp_path / "s").num_timesteps == 5
    assert sorted(os.listdir(tmp_path)) == ["s"]  # no temp or old directories left


def test_fallback_rename_path_and_recovery(tmp_path, filled_buffer, monkeypatch):
    buf, _ = filled_buffer([10, 20])
    buf.save(tmp_path / "s")
    monkeypatch.setattr(persist, "_exchange", lambda a, b: False)  # e.g. not Linux
    buf2, _ = filled_buffer([5])
    buf2.save(tmp_path / "s")
    assert ReplayBuffer.load(tmp_path / "s").num_timesteps == 5
    # a crash between the two renames leaves only <dir>.old-<pid>: load recovers it
    os.rename(tmp_path / "s", tmp_path / "s.old-123")
    with pytest.warns(UserWarning, match="previous snapshot"):
        assert ReplayBuffer.load(tmp_path / "s").num_timesteps == 5


def test_refuses_to_replace_a_foreign_directory(tmp_path, filled_buffer):
    buf, _ = filled_buffer([10])
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "precious.txt").write_text("x")
    with pytest.raises(ValueError, match="not a replay snapshot"):
        buf.save(tmp_path / "data")
    assert (tmp_path / "data" / "precious.txt").exists()


def _snapshot(tmp_path, filled_buffer):
    buf, _ = filled_buffer([10, 20, 7])
    buf.save(tmp_path / "s")
    return tmp_path / "s"


def test_truncated_file_is_reported(tmp_path, filled_buffer):
    d = _snapshot(tmp_path, filled_buffer)
    f = d / "fifo-01.npy"
    f.write_bytes(f.read_bytes()[:-7])
    with pytest.raises(ValueError, match="truncated"):
        ReplayBuffer.load(d)


def test_flipped_byte_is_reported(tmp_path, filled_buffer):
    d = _snapshot(tmp_path, filled_buffer)
    f = d / "fifo-00.npy"
    raw = bytearray(f.read_bytes())
    raw[-3] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="checksum"):
        ReplayBuffer.load(d)


@pytest.mark.parametrize("damage", ["json", "version", "missing_file", "index", "header"])
def test_corrupt_snapshot_is_reported(tmp_path, filled_buffer, damage):
    d = _snapshot(tmp_path, filled_buffer)
    m = json.loads((d / "manifest.json").read_text())
    if damage == "json":
        (d / "manifest.json").write_text("{ not json")
    elif damage == "version":
        m["version"] = 99
        (d / "manifest.json").write_text(json.dumps(m))
    elif damage == "missing_file":
        os.remove(d / "fifo-03.npy")
    elif damage == "index":  # offsets overlap: caught by the native restore check
        idx = np.load(d / "fifo-index.npy")
        idx[1, 1] = 3
        with open(d / "fifo-index.npy", "wb") as fh:
            np.lib.format.write_array_header_2_0(fh, {"descr": "<i8", "fortran_order": False, "shape": idx.shape})
            fh.write(idx.tobytes())
        m["files"]["fifo-index.npy"]["crc32"] = persist._npy.crc32(idx)
        (d / "manifest.json").write_text(json.dumps(m))
    elif damage == "header":
        (d / "fifo-02.npy").write_bytes(b"garbage" * 20)
    with pytest.raises(ValueError):
        ReplayBuffer.load(d)


def test_load_of_a_non_snapshot_is_reported(tmp_path):
    with pytest.raises(ValueError, match="not a replay snapshot"):
        ReplayBuffer.load(tmp_path)


CHILD = textwrap.dedent("""
    import sys, numpy as np
    from amago_fast import ReplayBuffer
    buf = ReplayBuffer.load(sys.argv[1])
    rng = np.random.default_rng(0)
    for i in range(1000):
        for _ in range(4):
            T = 500
            buf.add_trajectory({"x": rng.normal(size=(T + 1, 256)).astype(np.float32)},
                               np.zeros((T + 1, 2), np.float32), np.arange(T + 1),
                               np.zeros((T, 1), np.float32), np.zeros(T, np.float32),
                               np.zeros(T, bool))
        print("start", i, flush=True)
        buf.save(sys.argv[1])
        print("done", i, flush=True)
""")


def test_kill_during_save_leaves_a_loadable_snapshot(tmp_path):
    buf = ReplayBuffer({"x": ((256,), np.float32)}, 1, capacity=200_000, seed=0)
    buf.add_trajectory(
        {"x": np.ones((4, 256), np.float32)},
        np.zeros((4, 2), np.float32),
        np.arange(4),
        np.zeros((3, 1), np.float32),
        np.zeros(3),
        np.zeros(3, bool),
    )
    snap = tmp_path / "snap"
    buf.save(snap)
    killed_mid_write = 0
    for delay in (0.002, 0.01, 0.03):
        # cwd=tmp_path: the child must import the installed package, not a source tree
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(snap)], stdout=subprocess.PIPE, text=True, cwd=tmp_path
        )
        try:
            started = -1
            while started < 1:  # let one full save replace the snapshot, then kill the next
                line = child.stdout.readline()
                assert line, "child exited early"
                if line.startswith("start"):
                    started = int(line.split()[1])
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
        finally:
            child.wait(timeout=60)
            child.stdout.close()
        killed_mid_write += (tmp_path / f"snap.tmp-{child.pid}").exists()
        loaded = ReplayBuffer.load(snap)  # verify=True: sizes and checksums hold
        assert (loaded.num_trajectories - 1) % 4 == 0 and loaded.num_trajectories >= 5
        assert loaded.sample(4, 16).obs["x"].shape == (4, 17, 256)
        # (the next child starts from whatever snapshot survived)
    assert killed_mid_write >= 1, "no kill landed inside a save: the test proved nothing"
    buf.save(snap)  # a later save sweeps the temp directories of dead writers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"]

"""Importing real AMAGO buffers (fixtures written by AMAGO 3.3 itself)."""

from __future__ import annotations

import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from amago_fast import ReplayBuffer, import_amago
from amago_fast.replay.amago_import import import_into

# Copied from AMAGO 3.3 runs (see fixtures/README.md); shipped with the tests.
FIXTURES = Path(__file__).parent / "fixtures" / "amago_buffers"


def _files(name):
    return sorted((FIXTURES / name / "fifo").glob("*.npz"), key=lambda p: float(p.stem.rsplit("_", 1)[-1]))


@pytest.mark.parametrize("name,A", [("tmaze_h20", 4), ("pendulum", 1)])
def test_import_matches_the_npz_files(name, A):
    buf = import_amago(FIXTURES / name)
    assert buf.capacity == 2 * buf.num_timesteps  # default: room to keep training
    files = _files(name)
    assert buf.num_trajectories == len(files) and buf.action_dim == A
    assert buf.obs_keys == ["observation"]
    for tid, f in zip(buf.trajectory_ids(), files):  # imported oldest first
        t, z = buf.trajectory(tid), np.load(f)
        np.testing.assert_array_equal(t["obs"]["observation"], z["_OBS_KEY_observation"])
        np.testing.assert_array_equal(t["rl2s"], z["rl2s"])
        np.testing.assert_array_equal(t["time_idxs"], z["time_idxs"][:, 0])
        np.testing.assert_array_equal(t["actions"], z["actions"])
        np.testing.assert_array_equal(t["rews"], z["rews"][:, 0])
        np.testing.assert_array_equal(t["dones"], z["dones"][:, 0])
    b = buf.sample(8, 16, "both")
    assert b.actions.shape == (8, 16, A) and b.mask[:, :2].all()


def _assert_warned(rec, *patterns):
    """Each pattern matches one of the recorded warnings (the per-file one and the summary)."""
    messages = [str(w.message) for w in rec]
    for pat in patterns:
        assert any(re.search(pat, m) for m in messages), f"no warning matches {pat!r}: {messages}"


def test_import_into_an_existing_buffer_and_parent_dir(tmp_path):
    shutil.copytree(FIXTURES / "tmaze_h20", tmp_path / "run" / "buffer")
    buf = ReplayBuffer({"observation": ((2,), np.float32)}, 4, capacity=1000)
    ids = buf.import_amago(tmp_path / "run")  # the parent of buffer/ is accepted
    assert len(ids) == 8 and buf.num_timesteps == sum(len(np.load(f)["rews"]) for f in _files("tmaze_h20"))
    wrong = ReplayBuffer({"observation": ((3,), np.float32)}, 4, capacity=1000)
    with pytest.raises(ValueError, match="observation"), pytest.warns(UserWarning, match="expected shape"):
        wrong.import_amago(tmp_path / "run")  # every file skipped (warned), then the error


def test_protected_dir_is_imported_as_protected(tmp_path):
    shutil.copytree(FIXTURES / "pendulum", tmp_path / "b")
    moved = _files("pendulum")[0].name
    shutil.move(tmp_path / "b" / "fifo" / moved, tmp_path / "b" / "protected" / moved)
    buf = import_amago(tmp_path / "b", capacity=200)  # room for one fifo trajectory only
    assert buf.num_trajectories == 2 and buf.protected_capacity == 200


def test_pickled_traj_files_are_refused_by_default(tmp_path):
    shutil.copytree(FIXTURES / "tmaze_h20", tmp_path / "b")
    with open(tmp_path / "b" / "fifo" / "x_1_2.traj", "wb") as fh:
        pickle.dump({"not": "a trajectory"}, fh)
    with pytest.raises(ValueError, match="allow_pickle"):
        import_amago(tmp_path / "b")
    with pytest.warns(UserWarning, match="skipped") as rec:
        buf = import_amago(tmp_path / "b", allow_pickle=True)
    _assert_warned(rec, r"skipped x_1_2.traj: .*not an AMAGO Trajectory", r"skipped 1 of 9 files")
    assert buf.num_trajectories == 8


@pytest.mark.parametrize("damage", ["truncated", "empty", "not_a_zip", "missing_key", "nan", "foreign_env"])
@pytest.mark.parametrize("position", [0, 3])
def test_one_bad_file_is_skipped_with_a_warning_and_counted(tmp_path, damage, position):
    shutil.copytree(FIXTURES / "tmaze_h20", tmp_path / "b")
    victim = sorted((tmp_path / "b" / "fifo").iterdir(), key=lambda p: float(p.stem.rsplit("_", 1)[-1]))[position]
    if damage == "truncated":
        victim.write_bytes(victim.read_bytes()[:100])
    elif damage == "empty":
        victim.write_bytes(b"")
    elif damage == "not_a_zip":
        victim.write_bytes(b"junk" * 50)
    else:
        arrays = dict(np.load(victim))
        if damage == "missing_key":
            del arrays["actions"]
        elif damage == "nan":
            arrays["rews"][1] = np.nan
        else:  # a Pendulum file in a T-Maze buffer: other obs/action shapes
            arrays = dict(np.load(_files("pendulum")[0]))
        victim.unlink()
        np.savez(victim, **arrays)
    with pytest.warns(UserWarning, match="skipped") as rec:
        buf = import_amago(tmp_path / "b")
    assert buf.num_trajectories == 7 and buf.obs_fields["observation"][0] == (2,)
    _assert_warned(rec, re.escape(f"skipped {victim.name}"), r"skipped 1 of 8 files")
    skipped = []
    with pytest.warns(UserWarning, match="skipped"):
        ids = import_into(
            ReplayBuffer({"observation": ((2,), np.float32)}, 4, capacity=1000), tmp_path / "b", skipped=skipped
        )
    assert len(ids) == 7 and [Path(p).name for p, _ in skipped] == [victim.name]


def test_junk_npz_beside_a_real_buffer(tmp_path):
    shutil.copytree(FIXTURES / "pendulum", tmp_path / "b")
    np.savez(tmp_path / "b" / "fifo" / "junk.npz", hello=np.arange(3))
    with pytest.warns(UserWarning, match="skipped") as rec:
        buf = import_amago(tmp_path / "b")
    _assert_warned(rec, r"skipped junk.npz: .*missing keys", r"skipped 1 of 5 files")
    assert buf.num_trajectories == len(_files("pendulum"))


def test_missing_key_is_reported(tmp_path):
    (tmp_path / "b" / "fifo").mkdir(parents=True)
    np.savez(tmp_path / "b" / "fifo" / "e_1_1.npz", rl2s=np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="none of its 1 files.*missing keys"):
        import_amago(tmp_path / "b")
    with pytest.raises(ValueError, match="no AMAGO buffer"):
        import_amago(tmp_path)

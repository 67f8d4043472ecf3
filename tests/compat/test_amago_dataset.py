"""AmagoReplayDataset: AMAGO's dataset protocol over the C++ ReplayBuffer."""

from __future__ import annotations

import os
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from amago_fast.compat.amago_dataset import AmagoReplayDataset

# Real AMAGO 3.3 buffers: the copy the replay tests carry, else the shared fixtures.
FIXTURES = Path(__file__).resolve().parents[1] / "replay" / "fixtures" / "amago_buffers"
if not FIXTURES.exists():
    FIXTURES = Path("/work/shared/fixtures/amago_buffers")


def _fifo(root, name="run"):
    return os.path.join(root, name, "buffer", "fifo")


def _protected(root, name="run"):
    return os.path.join(root, name, "buffer", "protected")


def _load(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _matches_some_slice(item, sources) -> bool:
    """True if the item is exactly rows [s, s+n] / [s, s+n) of one source trajectory."""
    n = len(item.actions)
    for src in sources:
        T = len(src["actions"])
        for s in range(0, T - n + 1):
            if (
                np.array_equal(item.obs["observation"].numpy(), src["_OBS_KEY_observation"][s : s + n + 1])
                and np.array_equal(item.rl2s.numpy(), src["rl2s"][s : s + n + 1])
                and np.array_equal(item.actions.numpy(), src["actions"][s : s + n])
                and np.array_equal(item.rews.numpy(), src["rews"][s : s + n])
                and np.array_equal(item.dones.numpy(), src["dones"][s : s + n])
                and np.array_equal(item.time_idxs.numpy(), src["time_idxs"][s : s + n + 1])
            ):
                return True
    return False


@pytest.fixture
def tmaze_root(tmp_path):
    src = FIXTURES / "tmaze_h20" / "fifo"
    if not src.exists():
        pytest.skip("AMAGO fixture buffers not available")
    shutil.copytree(src, _fifo(tmp_path))
    os.makedirs(_protected(tmp_path))
    return tmp_path


def test_ingests_real_amago_buffer_and_serves_exact_slices(tmaze_root, amago_files):
    dset = AmagoReplayDataset(str(tmaze_root), "run", capacity=10_000)
    files = sorted(os.listdir(_fifo(tmaze_root)))
    assert dset.buffer.num_trajectories == len(files) == 8
    sources = [_load(os.path.join(_fifo(tmaze_root), f)) for f in files]
    assert dset.buffer.num_timesteps == sum(len(s["actions"]) for s in sources)
    assert not dset.ready_for_training  # not configured yet
    dset.configure(items_per_epoch=40, max_seq_len=8, padded_sampling="none")
    assert dset.ready_for_training and len(dset) == 40
    items = [dset[i] for i in range(40)]
    for item in items:
        assert len(item) == 8 and item.obs["observation"].shape == (9, 2)
        assert item.rews.shape == (8, 1) and item.dones.dtype == torch.bool
        assert item.time_idxs.dtype == torch.int64 and item.time_idxs.shape == (9, 1)
        assert _matches_some_slice(item, sources)
    batch = amago_files.collate(items[:6])
    assert batch.rl2s.shape == (6, 9, 5) and batch.actions.shape == (6, 8, 4)


@pytest.mark.parametrize("mode", ["both", "left", "right"])
def test_padded_windows_collate_to_amagos_mask(tmaze_root, amago_files, mode):
    dset = AmagoReplayDataset(str(tmaze_root), "run", capacity=10_000, seed=3)
    dset.configure(items_per_epoch=64, max_seq_len=12, padded_sampling=mode)
    items = [dset[i] for i in range(64)]
    sources = [_load(os.path.join(_fifo(tmaze_root), f)) for f in sorted(os.listdir(_fifo(tmaze_root)))]
    assert all(_matches_some_slice(it, sources) for it in items)
    lengths = torch.tensor([len(it) for it in items])
    assert (lengths < 12).any(), "padded sampling should produce some short windows"
    batch = amago_files.collate(items)
    # AMAGO's rule: a padded row is one whose rl2s is all 4.0
    mask = ~(batch.rl2s == 4.0).all(-1)  # (B, L+1)
    assert torch.equal(mask.sum(1), lengths + 1)


def test_fifo_eviction_mirrors_files_and_restart_reloads(tmp_path, amago_files):
    dset = AmagoReplayDataset(str(tmp_path), "run", capacity=35)
    written = [amago_files.write(dset.save_new_trajs_to, T=10, seed=i, t=float(i)) for i in range(5)]
    stats = dset.on_end_of_collection(None)
    assert stats["Trajectory Files Ingested"] == 5
    assert dset.buffer.num_trajectories == 3 and dset.buffer.num_timesteps == 30
    assert stats["Trajectory Files Deleted"] == 2
    left = sorted(os.listdir(dset.save_new_trajs_to))
    assert left == sorted(os.path.basename(p) for _, p in written[2:])  # the oldest two went
    # a restarted run sees exactly what the buffer held
    again = AmagoReplayDataset(str(tmp_path), "run", capacity=35)
    assert again.buffer.num_trajectories == 3
    for tid_a, tid_b in zip(dset.buffer.trajectory_ids(), again.buffer.trajectory_ids()):
        a, b = dset.buffer.trajectory(int(tid_a)), again.buffer.trajectory(int(tid_b))
        assert np.array_equal(a["obs"]["observation"], b["obs"]["observation"])
        assert np.array_equal(a["actions"], b["actions"])


def test_protected_files_are_kept_and_never_evicted(tmp_path, amago_files):
    os.makedirs(_protected(tmp_path))
    amago_files.write(_protected(tmp_path), T=10, seed=100, t=0.0)
    dset = AmagoReplayDataset(str(tmp_path), "run", capacity=20, protected_capacity=50)
    for i in range(4):
        amago_files.write(dset.save_new_trajs_to, T=10, seed=i, t=float(i + 1))
        dset.on_end_of_collection(None)
    assert dset.buffer.num_trajectories == 3  # 1 protected + the newest 2 fifo
    assert len(os.listdir(_protected(tmp_path))) == 1
    assert len(os.listdir(dset.save_new_trajs_to)) == 2


def test_new_files_unreadable_files_and_edit_rights(tmp_path, amago_files):
    dset = AmagoReplayDataset(str(tmp_path), "run", capacity=1000, keep_files=False)
    dset.configure(items_per_epoch=4, max_seq_len=4, has_edit_rights=False)
    _, p0 = amago_files.write(dset.save_new_trajs_to, T=6, seed=0, t=0.0)
    bad = os.path.join(dset.save_new_trajs_to, "Fake-v0_bad_1795538001.0.npz")
    with open(bad, "wb") as f:
        f.write(b"PK\x03\x04 truncated")
    stats = dset.on_end_of_collection(None)
    assert stats["Trajectory Files Ingested"] == 1 and stats["Unreadable Trajectory Files Skipped"] == 1
    assert os.path.exists(p0)  # no edit rights: never delete
    assert os.path.exists(bad)  # left for a later retry
    os.remove(bad)
    amago_files.write(dset.save_new_trajs_to, T=6, seed=1, t=2.0)
    dset.configure(items_per_epoch=4, max_seq_len=4, has_edit_rights=True)
    stats = dset.on_end_of_collection(None)
    assert stats["Trajectory Files Ingested"] == 1  # p0 is not ingested twice
    assert dset.buffer.num_trajectories == 2
    assert len(os.listdir(dset.save_new_trajs_to)) == 1  # keep_files=False: the new one is gone


def test_configure_from_experiment_and_description(tmaze_root):
    dset = AmagoReplayDataset(str(tmaze_root), "run")
    exp = types.SimpleNamespace(
        train_batches_per_epoch=5,
        batch_size=3,
        accelerator=types.SimpleNamespace(num_processes=2),
        max_seq_len=16,
        padded_sampling="left",
        has_dset_edit_rights=False,
    )
    dset.configure_from_experiment(exp)
    assert len(dset) == 30 and dset.max_seq_len == 16 and dset.padded_sampling == "left"
    assert dset.has_edit_rights is False
    assert "Trajectories: 8" in dset.get_description()
    assert dset.on_end_of_epoch(0)["Trajectories in Replay Buffer"] == 8


def test_sample_random_trajectory_is_a_whole_file(tmaze_root):
    dset = AmagoReplayDataset(str(tmaze_root), "run")
    item = dset.sample_random_trajectory()
    sources = [_load(os.path.join(_fifo(tmaze_root), f)) for f in os.listdir(_fifo(tmaze_root))]
    assert any(len(s["actions"]) == len(item) and np.array_equal(s["actions"], item.actions.numpy()) for s in sources)


def test_delete_empties_fifo_keeps_protected(tmp_path, amago_files):
    os.makedirs(_protected(tmp_path))
    amago_files.write(_protected(tmp_path), T=5, seed=9)
    dset = AmagoReplayDataset(str(tmp_path), "run", protected_capacity=100)
    amago_files.write(dset.save_new_trajs_to, T=5, seed=1, t=1.0)
    dset.on_end_of_collection(None)
    assert dset.buffer.num_trajectories == 2
    dset.delete()
    assert os.listdir(dset.save_new_trajs_to) == [] and dset.buffer.num_trajectories == 1


def test_dataloader_workers_draw_different_windows(tmaze_root, amago_files):
    dset = AmagoReplayDataset(str(tmaze_root), "run", chunk_size=8)
    dset.configure(items_per_epoch=16, max_seq_len=6)
    loader = torch.utils.data.DataLoader(dset, batch_size=8, num_workers=2, collate_fn=amago_files.collate)
    a, b = list(loader)
    assert not torch.equal(a.rl2s, b.rl2s)  # each worker reseeds from its own seed


def test_bad_input_raises(tmp_path):
    with pytest.raises(ValueError, match="capacity"):
        AmagoReplayDataset(str(tmp_path), "run", capacity=0)
    dset = AmagoReplayDataset(str(tmp_path), "run")
    with pytest.raises(ValueError, match="configure"):
        dset[0]
    with pytest.raises(ValueError, match="padded_sampling"):
        dset.configure(items_per_epoch=4, max_seq_len=4, padded_sampling="middle")
    with pytest.raises(ValueError, match="items_per_epoch"):
        dset.configure(items_per_epoch=0, max_seq_len=4)
    dset.configure(items_per_epoch=4, max_seq_len=4)
    assert not dset.ready_for_training
    with pytest.raises(ValueError, match="no trajectories"):
        dset[0]


def test_subclasses_amago_rldataset_when_importable(fake_amago, monkeypatch, tmaze_root, ref):
    import importlib
    import sys

    import amago_fast.compat.amago_dataset as original

    monkeypatch.delitem(sys.modules, "amago_fast.compat.amago_dataset")
    try:
        fresh = importlib.import_module("amago_fast.compat.amago_dataset")
        assert issubclass(fresh.AmagoReplayDataset, ref.FakeRLDataset)
        dset = fresh.AmagoReplayDataset(str(tmaze_root), "run")
        assert dset.fake_base_init_called and dset.dset_name == "run"
        dset.configure(items_per_epoch=2, max_seq_len=5)
        assert isinstance(dset[0], ref.FakeRLData)  # AMAGO's own item class
    finally:
        sys.modules["amago_fast.compat.amago_dataset"] = original


def test_mmap_storage_and_given_buffer(tmp_path, amago_files):
    dset = AmagoReplayDataset(str(tmp_path), "run", capacity=100, storage="mmap", path=str(tmp_path / "arena"))
    arrays, _ = amago_files.write(dset.save_new_trajs_to, T=7, seed=4)
    dset.on_end_of_collection(None)
    stored = dset.buffer.trajectory(int(dset.buffer.trajectory_ids()[0]))
    assert np.array_equal(stored["obs"]["observation"], arrays["_OBS_KEY_observation"])
    assert os.listdir(tmp_path / "arena")  # the arenas live in files
    # a given buffer is used as is: the directory's files are added to it
    from amago_fast import ReplayBuffer

    buf = ReplayBuffer({"observation": ((3,), np.float32)}, 2, capacity=50, seed=1)
    other = AmagoReplayDataset(str(tmp_path / "other"), "run", buffer=buf)
    amago_files.write(other.save_new_trajs_to, T=5, seed=5)
    other.on_end_of_collection(None)
    assert other.buffer is buf and buf.num_trajectories == 1

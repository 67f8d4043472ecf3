"""A spool file the learner cannot use is quarantined (or skipped if gone) and counted;
ingestion goes on with the next file."""

import numpy as np
import pytest

from amago_fast.distributed.spool import TrajectorySpool
from amago_fast.replay import ReplayBuffer


def _traj(T=3, rew=0.5):
    return {
        "obs": {"observation": np.zeros((T + 1, 2), np.float32)},
        "rl2s": np.zeros((T + 1, 2), np.float32),
        "time_idxs": np.arange(T + 1),
        "actions": np.ones((T, 1), np.float32),
        "rews": np.full(T, rew, np.float32),
        "dones": np.zeros(T, bool),
    }


def _buf():
    return ReplayBuffer({"observation": ((2,), np.float32)}, 1, capacity=1000)


def _names(sp, d):
    return sorted(p.name for p in (sp.root / d).iterdir())


@pytest.mark.parametrize("damage", ["zero_bytes", "truncated", "not_a_zip", "missing_key", "nan_reward"])
def test_bad_file_is_quarantined_and_ingest_goes_on(tmp_path, damage):
    sp = TrajectorySpool(tmp_path)
    good1 = sp.write(_traj(), 0, 0)
    bad = sp.write(_traj(rew=np.nan) if damage == "nan_reward" else _traj(), 0, 1)
    good2 = sp.write(_traj(), 0, 2)
    if damage == "zero_bytes":
        bad.write_bytes(b"")
    elif damage == "truncated":
        bad.write_bytes(bad.read_bytes()[:100])
    elif damage == "not_a_zip":
        bad.write_bytes(b"\x00" * 64)
    elif damage == "missing_key":
        arrays = dict(np.load(bad))
        del arrays["rews"]
        with open(bad, "wb") as f:
            np.savez(f, **arrays)
    buf = _buf()
    with pytest.warns(UserWarning, match=f"{bad.name} quarantined to rejected/"):
        got = sp.ingest(buf)
    assert [n for n, _ in got] == [good1.name, good2.name] and buf.num_trajectories == 2
    assert _names(sp, "rejected") == [bad.name] and _names(sp, "ready") == [] and sp.rejected == 1
    assert sp.ingest(_buf()) == []  # it does not come back


def test_file_deleted_between_listing_and_reading_is_skipped(tmp_path, monkeypatch):
    sp = TrajectorySpool(tmp_path)
    gone = sp.write(_traj(), 0, 0)
    kept = sp.write(_traj(), 0, 1)
    real = TrajectorySpool.ready

    def listing_then_delete(self):
        files = real(self)
        gone.unlink()  # e.g. an operator cleaning up, after the listing
        return files

    monkeypatch.setattr(TrajectorySpool, "ready", listing_then_delete)
    got = sp.ingest(_buf())
    assert [n for n, _ in got] == [kept.name] and sp.vanished == 1 and sp.rejected == 0


def test_listing_survives_a_file_vanishing_before_stat(tmp_path, monkeypatch):
    sp = TrajectorySpool(tmp_path)
    a = sp.write(_traj(), 0, 0)
    b = sp.write(_traj(), 0, 1)
    real_iterdir = type(sp.root).iterdir

    def iterdir_then_delete(self):
        out = list(real_iterdir(self))
        if self.name == "ready" and a.exists():
            a.unlink()
        return iter(out)

    monkeypatch.setattr(type(sp.root), "iterdir", iterdir_then_delete)
    assert sp.ready() == [b]

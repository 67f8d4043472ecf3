"""A crash-safe hand-off of finished trajectories from actor processes to a learner.

    spool/
      tmp/        files being written (<name>.npz.tmp); never read
      ready/      complete trajectories, one .npz each, waiting for the learner
      consumed/   ingested into the learner's buffer, kept until a checkpoint holds them
      rejected/   files the learner could not use (unreadable, zero-byte, NaN/inf values,
                  wrong spaces): quarantined for inspection, counted in `rejected`
      ingest.jsonl  one line per ingested file (name, T, actor, seq): provenance

An actor writes a whole trajectory to tmp/, flushes and fsyncs it, then renames it into
ready/ (atomic on POSIX): a reader sees either nothing or the complete file, and an
actor killed at any moment loses only the trajectory it had not finished. The learner
moves each file it ingests to consumed/ and deletes those only after a checkpoint that
contains them is committed; a learner restarted from that checkpoint re-ingests
consumed/ first (`recover`). Files are plain .npz loaded with allow_pickle=False.
"""

from __future__ import annotations

import json
import os
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

NAME_RE = re.compile(r"^a(\d+)-(\d+)\.npz$")
FIELDS = ("rl2s", "time_idxs", "actions", "rews", "dones")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TrajectorySpool:
    """TrajectorySpool(root): write(traj) on actors; ingest(buffer) / commit() on the learner."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        for d in ("tmp", "ready", "consumed"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self.rejected = 0  # files quarantined by this process's ingest()
        self.vanished = 0  # files listed in ready/ but gone before they were read

    # ------------------------------------------------------------------ actor side
    def next_seq(self, actor_id: int) -> int:
        """First unused sequence number of `actor_id` (a restarted actor continues its count)."""
        seqs = [
            int(m.group(2))
            for d in ("ready", "consumed")
            for p in (self.root / d).iterdir()
            if (m := NAME_RE.match(p.name)) and int(m.group(1)) == actor_id
        ]
        logged = self._logged_seqs(actor_id)
        return max(seqs + logged, default=-1) + 1

    def clear_tmp(self, actor_id: int) -> None:
        """Remove leftovers of a killed writer with this actor id (call before writing)."""
        for p in (self.root / "tmp").glob(f"a{actor_id:04d}-*"):
            p.unlink(missing_ok=True)

    def write(self, traj: dict, actor_id: int, seq: int) -> Path:
        """Atomically publish one finished trajectory: obs {key: (T+1, ...)}, rl2s (T+1, 1+A),
        time_idxs (T+1,), actions (T, A), rews (T,), dones (T,)."""
        if not isinstance(actor_id, int) or actor_id < 0:
            raise ValueError(f"actor_id must be a non-negative int, got {actor_id!r}")
        T = int(np.asarray(traj["actions"]).shape[0])
        if T < 1:
            raise ValueError(f"traj: a trajectory needs >= 1 transition, got T={T}")
        name = f"a{actor_id:04d}-{seq:09d}.npz"
        arrays = {f"obs.{k}": np.ascontiguousarray(v) for k, v in traj["obs"].items()}
        arrays.update({k: np.ascontiguousarray(traj[k]) for k in FIELDS})
        tmp = self.root / "tmp" / (name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        final = self.root / "ready" / name
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        return final

    # ---------------------------------------------------------------- learner side
    def ready(self) -> list[Path]:
        """Complete trajectories not yet ingested, oldest first."""
        keyed = []
        for p in (self.root / "ready").iterdir():
            if NAME_RE.match(p.name):
                try:
                    keyed.append((p.stat().st_mtime_ns, p.name, p))
                except FileNotFoundError:  # taken away since the listing
                    continue
        return [p for _, _, p in sorted(keyed)]

    @staticmethod
    def read(path: Path) -> dict:
        """Load one spool file -> the trajectory dict (no pickle)."""
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:  # closed even if unreadable
            out: dict[str, Any] = {"obs": {k[4:]: z[k] for k in z.files if k.startswith("obs.")}}
            for k in FIELDS:
                out[k] = z[k]
        bad = [
            k
            for k, v in [*((f"obs.{k}", v) for k, v in out["obs"].items()), *((k, out[k]) for k in FIELDS)]
            if v.dtype.kind in "fc" and not np.isfinite(v).all()
        ]
        if bad:
            raise ValueError(f"NaN/inf values in {bad}")
        return out

    def _quarantine(self, p: Path, why: str) -> None:
        (self.root / "rejected").mkdir(exist_ok=True)
        try:
            os.replace(p, self.root / "rejected" / p.name)
        except FileNotFoundError:
            self.vanished += 1
            return
        self.rejected += 1
        warnings.warn(f"spool: {p.name} quarantined to rejected/: {why}", stacklevel=3)

    def ingest(self, buffer, max_files: Optional[int] = None) -> list[tuple[str, int]]:
        """Add ready trajectories to `buffer` (ReplayBuffer.add_trajectory validates them),
        move them to consumed/, log them; returns [(file name, T)]."""
        done = []
        with open(self.root / "ingest.jsonl", "a", encoding="utf-8") as log:
            for p in self.ready()[:max_files]:
                try:
                    t = self.read(p)
                except FileNotFoundError:  # removed between listing and reading: nothing to do
                    self.vanished += 1
                    continue
                except (ValueError, TypeError, KeyError, OSError, EOFError, zipfile.BadZipFile) as e:
                    # zero-byte, truncated or foreign: set aside, keep learning
                    self._quarantine(p, f"unreadable ({type(e).__name__}: {e})")
                    continue
                try:
                    buffer.add_trajectory(t["obs"], t["rl2s"], t["time_idxs"], t["actions"], t["rews"], t["dones"])
                except (ValueError, TypeError, KeyError) as e:  # another env's actor?
                    self._quarantine(p, f"refused by the buffer ({e})")
                    continue
                try:
                    os.replace(p, self.root / "consumed" / p.name)
                except FileNotFoundError:  # already in the buffer; only the file is gone
                    self.vanished += 1
                m = NAME_RE.match(p.name)
                T = int(t["actions"].shape[0])
                log.write(
                    json.dumps(
                        {
                            "file": p.name,
                            "T": T,
                            "actor": int(m.group(1)),
                            "seq": int(m.group(2)),
                            "return": float(np.sum(t["rews"])),
                        }
                    )
                    + "\n"
                )
                done.append((p.name, T))
            log.flush()
        return done

    def commit(self) -> int:
        """A checkpoint now holds everything in consumed/: delete it. Returns files removed."""
        n = 0
        for p in (self.root / "consumed").iterdir():
            p.unlink(missing_ok=True)
            n += 1
        return n

    def recover(self) -> int:
        """Learner restart: trajectories ingested after the last checkpoint are not in it;
        put them back in ready/. Returns how many."""
        n = 0
        for p in (self.root / "consumed").iterdir():
            os.replace(p, self.root / "ready" / p.name)
            n += 1
        return n

    def _logged_seqs(self, actor_id: int) -> list[int]:
        path = self.root / "ingest.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:  # a learner killed mid-line
                continue
            if rec.get("actor") == actor_id:
                out.append(int(rec["seq"]))
        return out

    def ingest_log(self) -> list[dict]:
        """Parsed ingest.jsonl records (complete lines only)."""
        path = self.root / "ingest.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

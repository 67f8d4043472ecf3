"""Snapshots of a ReplayBuffer: ``<dir>/manifest.json`` + one .npy per field and partition.

No pickle anywhere. Only live rows are written (compacted, oldest first), with the index
table and the generator state, so ``load`` continues the exact random stream.

Point in time: the native store copies the index, the generator state and every live
row into the snapshot files during one hold of its lock (``ReplayStore.snapshot``), so a
thread adding trajectories meanwhile waits and can never tear a snapshot.

Crash safety: everything is written into ``<dir>.tmp-<pid>``, each file fsynced, then the
directory is swapped in with one atomic rename (renameat2 RENAME_EXCHANGE on Linux; a
two-step rename elsewhere, which ``load`` can recover from). A process killed at any
point leaves either the previous snapshot or the new one, never a mix. A save that fails
removes its temp directory; temp directories of dead writers are swept when a save or a
load starts.
"""

from __future__ import annotations

import ctypes
import glob
import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np

from . import _npy
from ._snapshot_load import FORMAT, PARTS, VERSION, _pid_alive, load_buffer, manifest_crc  # noqa: F401


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    return fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0


def sweep_dead_writers(final: Path) -> None:
    """Remove ``<dir>.tmp-<pid>`` left by writers that died mid-save, and ``<dir>.old-<pid>``
    of dead writers once ``<dir>`` itself is a complete snapshot."""
    kinds = ("tmp", "old") if (final / "manifest.json").is_file() else ("tmp",)
    for kind in kinds:
        for p in final.parent.glob(glob.escape(final.name) + f".{kind}-*"):
            pid = p.name.rsplit("-", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                shutil.rmtree(p, ignore_errors=True)


_locks_guard = threading.Lock()
_locks: dict[Path, threading.Lock] = {}


def _path_lock(final: Path) -> threading.Lock:
    """One save at a time per directory in this process (they share ``<dir>.tmp-<pid>``)."""
    with _locks_guard:
        return _locks.setdefault(final, threading.Lock())


def save_buffer(buf, directory) -> None:
    final = Path(directory).absolute()
    if final.exists() and not (final / "manifest.json").is_file():
        raise ValueError(f"directory={str(final)!r} exists and is not a replay snapshot; refusing to replace it")
    with _path_lock(final):
        sweep_dead_writers(final)
        tmp = final.parent / f"{final.name}.tmp-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        try:
            _write_snapshot(buf, tmp)
            _swap_in(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # nothing half-written stays behind
            raise
        _fsync_dir(final.parent)


def _swap_in(tmp: Path, final: Path) -> None:
    if not final.exists():
        os.rename(tmp, final)
    elif _exchange(tmp, final):
        shutil.rmtree(tmp)  # tmp now holds the previous snapshot
    else:
        old = final.parent / f"{final.name}.old-{os.getpid()}"
        os.rename(final, old)
        try:
            os.rename(tmp, final)
        except BaseException:
            os.rename(old, final)  # put the previous snapshot back
            raise
        shutil.rmtree(old)


def _write_snapshot(buf, tmp: Path) -> None:
    """All files of one snapshot into ``tmp``, fsynced; the manifest last."""
    hsize = _npy.header_size([(f.dtype, f.shape) for f in buf.fields])
    paths = [[tmp / f"{name}-{i:02d}.npy" for i in range(len(buf.fields))] for name in PARTS]
    fds: list[list[int]] = []
    files, parts = {}, []
    try:
        for row in paths:
            fds.append([])
            for path in row:
                fds[-1].append(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644))
        index, rng_state, next_id, (err, ep, ef) = buf.store.snapshot(fds, hsize)
        if err:
            raise OSError(err, os.strerror(err), str(paths[ep][ef]))
        for p, name in enumerate(PARTS):
            ids, offsets, lengths, rows = index[p]
            for i, f in enumerate(buf.fields):
                fd = fds[p][i]
                head = _npy.header_bytes(f.dtype, (rows,) + f.shape, hsize)
                if os.pwrite(fd, head, 0) != hsize:
                    raise OSError(f"short write of the header of {paths[p][i]}")
                os.fsync(fd)
                files[paths[p][i].name] = {
                    "shape": [rows, *f.shape],
                    "dtype": f.dtype.str,
                    "crc32": _npy.crc32_file(fd, hsize),
                }
            table = np.stack([ids, offsets, lengths], axis=1).astype(np.int64)  # (N, 3)
            files[f"{name}-index.npy"] = _npy.write_npy(tmp / f"{name}-index.npy", table)
            parts.append({"name": name, "num_trajectories": int(len(ids)), "rows": int(rows)})
    finally:
        for row in fds:
            for fd in row:
                os.close(fd)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "created_unix": time.time(),
        "config": {
            "fields": [{"key": k, "shape": list(s), "dtype": np.dtype(d).str} for k, (s, d) in buf.obs_fields.items()],
            "action_dim": buf.action_dim,
            "capacity": buf.capacity,
            "protected_capacity": buf.protected_capacity,
            "max_traj_len": buf.max_traj_len,
            "seed": buf.seed,
            "discrete_actions": buf.discrete_actions,
        },
        "rng_state": [int(v) for v in rng_state],
        "next_id": int(next_id),
        "partitions": parts,
        "files": files,
    }
    manifest["manifest_crc32"] = manifest_crc(manifest)
    with open(tmp / "manifest.json", "x") as fh:
        json.dump(manifest, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(tmp)

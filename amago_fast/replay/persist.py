"""Snapshots of a ReplayBuffer: ``<dir>/manifest.json`` + one .npy per field and partition.

No pickle anywhere. Only live rows are written (compacted, oldest first), with the index
table and the generator state, so ``load`` continues the exact random stream. Crash
safety: everything is written into ``<dir>.tmp-<pid>``, each file fsynced, then the
directory is swapped in with one atomic rename (renameat2 RENAME_EXCHANGE on Linux; a
two-step rename elsewhere, which ``load`` can recover from). A process killed at any
point leaves either the previous snapshot or the new one, never a mix.
"""
from __future__ import annotations

import ctypes
import glob
import json
import os
import shutil
import time
import warnings
import zlib
from pathlib import Path

import numpy as np

FORMAT = "amago_fast.replay"
VERSION = 1
PARTS = ("fifo", "protected")
_CRC_CHUNK = 1 << 24


def _crc32(a: np.ndarray) -> int:
    mv, crc = _bytes(a), 0
    for i in range(0, len(mv), _CRC_CHUNK):
        crc = zlib.crc32(mv[i: i + _CRC_CHUNK], crc)
    return crc


def _bytes(a: np.ndarray) -> np.ndarray:
    """Flat uint8 view of a C-contiguous array (any dtype, any shape, empty included)."""
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_npy(path: Path, segments: list[np.ndarray], shape: tuple, dtype: np.dtype) -> dict:
    """Write the concatenation of ``segments`` as one .npy without building it in memory."""
    crc = 0
    with open(path, "wb") as fh:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                  "shape": tuple(shape)}
        np.lib.format.write_array_header_2_0(fh, header)
        for seg in segments:
            raw = _bytes(seg)
            crc = zlib.crc32(raw, crc)
            fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())
    return {"shape": list(shape), "dtype": np.dtype(dtype).str, "crc32": crc}


def _read_npy_into(path: Path, meta: dict, out: np.ndarray | None, verify: bool) -> np.ndarray:
    """Read a .npy written by _write_npy, checking header and size against the manifest."""
    shape, dtype = tuple(meta["shape"]), np.dtype(meta["dtype"])
    if not path.is_file():
        raise ValueError(f"snapshot file {path} is missing")
    with open(path, "rb") as fh:
        try:
            version = np.lib.format.read_magic(fh)
            read = {(1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read is None:
                raise ValueError(f"unsupported .npy version {version}")
            hshape, fortran, hdtype = read(fh)
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"snapshot file {path} has a corrupt .npy header: {e}") from None
        if tuple(hshape) != shape or np.dtype(hdtype) != dtype or fortran:
            raise ValueError(f"snapshot file {path}: header {hshape} {hdtype} does not match the "
                             f"manifest {shape} {dtype}")
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        size = os.fstat(fh.fileno()).st_size
        if size != fh.tell() + nbytes:
            raise ValueError(f"snapshot file {path} is truncated or padded: {size} bytes, "
                             f"expected {fh.tell() + nbytes}")
        dst = np.empty(shape, dtype) if out is None else out[: shape[0]]
        if nbytes and fh.readinto(_bytes(dst)) != nbytes:
            raise ValueError(f"snapshot file {path}: short read")
    if verify and _crc32(dst) != meta["crc32"]:
        raise ValueError(f"snapshot file {path}: checksum mismatch (corrupt data)")
    return dst


def _segments(offsets: np.ndarray, lengths: np.ndarray) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Contiguous row runs covering the trajectories (in deque order) and the new offsets
    they get once the runs are written back to back."""
    runs, new = [], np.empty_like(offsets)
    pos = 0
    for i, (o, n) in enumerate(zip(offsets.tolist(), lengths.tolist())):
        if runs and runs[-1][1] == o:  # continues the current run
            runs[-1][1] = o + n + 1
        else:
            runs.append([o, o + n + 1])
        new[i] = pos
        pos += n + 1
    return [tuple(r) for r in runs], new


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    return fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0


def _sweep_dead_writers(final: Path) -> None:
    """Remove ``<dir>.tmp-<pid>`` left by writers that were killed mid-save."""
    for p in final.parent.glob(glob.escape(final.name) + ".tmp-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except OSError:  # alive (or not ours to signal): leave it
            pass


def save_buffer(buf, directory) -> None:
    final = Path(directory).absolute()
    if final.exists() and not (final / "manifest.json").is_file():
        raise ValueError(f"directory={str(final)!r} exists and is not a replay snapshot; "
                         "refusing to replace it")
    _sweep_dead_writers(final)
    tmp = final.parent / f"{final.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    files, parts = {}, []
    for p, name in enumerate(PARTS):
        ids, offsets, lengths, _head = buf._store.index(p)
        runs, new_off = _segments(offsets, lengths)
        rows = int((lengths + 1).sum())
        index = np.stack([ids, new_off, lengths], axis=1).astype(np.int64)  # (N, 3)
        files[f"{name}-index.npy"] = _write_npy(tmp / f"{name}-index.npy", [index], index.shape, np.int64)
        for i, (f, arena) in enumerate(zip(buf.fields, buf._arenas[p])):
            fn = f"{name}-{i:02d}.npy"
            files[fn] = _write_npy(tmp / fn, [arena[a:b] for a, b in runs], (rows,) + f.shape, f.dtype)
        parts.append({"name": name, "num_trajectories": int(len(ids)), "rows": rows})
    manifest = {
        "format": FORMAT, "version": VERSION, "created_unix": time.time(),
        "config": {
            "fields": [{"key": k, "shape": list(s), "dtype": np.dtype(d).str}
                       for k, (s, d) in buf.obs_fields.items()],
            "action_dim": buf.action_dim, "capacity": buf.capacity,
            "protected_capacity": buf.protected_capacity, "max_traj_len": buf.max_traj_len,
            "seed": buf.seed, "discrete_actions": buf.discrete_actions,
        },
        "rng_state": [int(v) for v in buf._store.rng_state],
        "next_id": int(buf._store.next_id),
        "partitions": parts, "files": files,
    }
    with open(tmp / "manifest.json", "w") as fh:
        json.dump(manifest, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(tmp)
    if not final.exists():
        os.rename(tmp, final)
    elif _exchange(tmp, final):
        shutil.rmtree(tmp)  # tmp now holds the previous snapshot
    else:
        old = final.parent / f"{final.name}.old-{os.getpid()}"
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old)
    _fsync_dir(final.parent)


def _resolve(directory) -> Path:
    d = Path(directory).absolute()
    if (d / "manifest.json").is_file():
        return d
    olds = sorted(glob.glob(glob.escape(str(d)) + ".old-*"), key=os.path.getmtime)
    if not d.exists() and olds:  # killed between the two renames of the fallback path
        warnings.warn(f"{d} is missing; loading the previous snapshot {olds[-1]}", stacklevel=3)
        return Path(olds[-1])
    raise ValueError(f"directory={str(d)!r} is not a replay snapshot (no manifest.json)")


def load_buffer(cls, directory, storage="memory", path=None, num_threads=None, relabeler=None,
                verify=True):
    d = _resolve(directory)
    try:
        m = json.loads((d / "manifest.json").read_text())
        if m.get("format") != FORMAT:
            raise ValueError(f"not an {FORMAT} snapshot")
        if m.get("version") != VERSION:
            raise ValueError(f"unsupported snapshot version {m.get('version')} (this is {VERSION})")
        c = m["config"]
        fields = {f["key"]: (tuple(f["shape"]), np.dtype(f["dtype"])) for f in c["fields"]}
        buf = cls(fields, c["action_dim"], capacity=c["capacity"],
                  protected_capacity=c["protected_capacity"], max_traj_len=c["max_traj_len"],
                  storage=storage, path=path, seed=c["seed"], num_threads=num_threads,
                  relabeler=relabeler, discrete_actions=bool(c.get("discrete_actions", False)))
        for p, part in enumerate(m["partitions"]):
            name = PARTS[p]
            if part["name"] != name:
                raise ValueError(f"partition {p} is {part['name']!r}, expected {name!r}")
            index = _read_npy_into(d / f"{name}-index.npy", m["files"][f"{name}-index.npy"], None, verify)
            if index.shape != (part["num_trajectories"], 3):
                raise ValueError(f"{name}-index.npy has shape {index.shape}")
            rows = int(part["rows"])
            if rows > (buf._rows if p == 0 else buf._prows):
                raise ValueError(f"{name}: {rows} rows do not fit the configured capacity")
            for i, f in enumerate(buf.fields):
                fn = f"{name}-{i:02d}.npy"
                meta = m["files"][fn]
                if tuple(meta["shape"]) != (rows,) + f.shape or np.dtype(meta["dtype"]) != f.dtype:
                    raise ValueError(f"{fn}: manifest entry does not match field {f.name}")
                _read_npy_into(d / fn, meta, buf._arenas[p][i], verify)
            buf._store.restore(p, index[:, 0].copy(), index[:, 1].copy(), index[:, 2].copy(), rows,
                               int(m["next_id"]))
        buf._store.rng_state = [int(v) for v in m["rng_state"]]
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"corrupt replay snapshot manifest in {d}: {e!r}") from None
    return buf

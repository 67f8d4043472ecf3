"""Loading a snapshot written by persist.save_buffer, treating every byte as untrusted.

Each value read from manifest.json or a .npy file is type- and range-checked before it
sizes an allocation, a read or a native call; sums are exact Python ints, so a crafted
2**63-1 cannot wrap around a bounds check. Anything wrong is a ValueError naming the
file; no input can crash the process (tests/faults/test_snapshot_files.py).
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import warnings
import zlib
from pathlib import Path

import numpy as np

from . import _npy

FORMAT = "amago_fast.replay"
VERSION = 1
PARTS = ("fifo", "protected")
_I64_MAX = 2**63 - 1


def manifest_crc(m: dict) -> int:
    """CRC32 of the manifest's canonical JSON without its own ``manifest_crc32`` entry."""
    body = {k: v for k, v in m.items() if k != "manifest_crc32"}
    return zlib.crc32(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def _int(v, name: str, lo: int = 0, hi: int = _I64_MAX) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"manifest: {name}={v!r} is not an int in [{lo}, {hi}]")
    return v


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive but not ours to signal
        return True
    return True


def _resolve(directory) -> Path:
    d = Path(directory).absolute()
    if (d / "manifest.json").is_file():
        return d
    olds = sorted(glob.glob(glob.escape(str(d)) + ".old-*"), key=lambda p: Path(p).stat().st_mtime)
    olds = [p for p in olds if (Path(p) / "manifest.json").is_file()]
    if not d.exists() and olds:  # killed between the two renames of the fallback path
        old = Path(olds[-1])
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            try:  # its writer is dead: put the previous snapshot back in place
                old.rename(d)
                warnings.warn(f"{d} was missing; restored the previous snapshot from {old}", stacklevel=4)
                return d
            except OSError:
                pass
        warnings.warn(f"{d} is missing; loading the previous snapshot {old}", stacklevel=4)
        return old
    raise ValueError(f"directory={str(d)!r} is not a replay snapshot (no manifest.json)")


def _read_manifest(d: Path, verify: bool) -> dict:
    try:
        m = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"corrupt replay snapshot manifest in {d}: {e!r}") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ValueError(f"{d}/manifest.json is not an {FORMAT} snapshot")
    if m.get("version") != VERSION:
        raise ValueError(f"unsupported snapshot version {m.get('version')!r} (this is {VERSION})")
    if verify and "manifest_crc32" in m and manifest_crc(m) != m["manifest_crc32"]:
        raise ValueError(f"{d}/manifest.json: checksum mismatch (corrupt manifest)")
    return m


def _check_index(name: str, index: np.ndarray, rows: int, next_id: int) -> None:
    """Compacted layout as save writes it: offsets are the running sum of length + 1."""
    ids, offsets, lengths = (index[:, j].tolist() for j in range(3))
    if any(n < 1 or n > rows for n in lengths):
        raise ValueError(f"{name}-index.npy: a trajectory length is outside [1, {rows}]")
    ends = [0] + list(itertools.accumulate(n + 1 for n in lengths))  # exact Python ints
    if offsets != ends[:-1] or ends[-1] != rows:
        raise ValueError(f"{name}-index.npy: offsets do not tile the {rows} stored rows")
    if any(not 0 <= i < next_id for i in ids) or any(b <= a for a, b in zip(ids, ids[1:])):
        raise ValueError(f"{name}-index.npy: ids must increase within [0, next_id={next_id})")


def _build(cls, m: dict, **kw):
    c = m["config"]
    if not isinstance(c, dict) or not isinstance(c.get("fields"), list):
        raise ValueError("manifest: config.fields must be a list")
    fields = {}
    for f in c["fields"]:
        if (
            not isinstance(f, dict)
            or not isinstance(f.get("dtype"), str)
            or not isinstance(f.get("shape"), list)
            or not isinstance(f.get("key"), str)
        ):
            raise ValueError(f"manifest: malformed field entry {f!r}")
        fields[f["key"]] = (tuple(_int(s, f"shape of {f['key']!r}", 1) for s in f["shape"]), np.dtype(f["dtype"]))
    try:
        return cls(
            fields,
            c["action_dim"],
            capacity=c["capacity"],
            protected_capacity=c["protected_capacity"],
            max_traj_len=c["max_traj_len"],
            seed=c["seed"],
            discrete_actions=bool(c.get("discrete_actions", False)),
            **kw,
        )
    except MemoryError:
        raise ValueError(f"manifest: capacity={c['capacity']!r} cannot be allocated") from None


def load_buffer(cls, directory, storage="memory", path=None, num_threads=None, relabeler=None, verify=True):
    from .persist import sweep_dead_writers

    d = _resolve(directory)
    sweep_dead_writers(d)
    m = _read_manifest(d, verify)
    try:
        buf = _build(cls, m, storage=storage, path=path, num_threads=num_threads, relabeler=relabeler)
        next_id = _int(m["next_id"], "next_id")
        rng = m["rng_state"]
        if not isinstance(rng, list) or len(rng) != 4:
            raise ValueError(f"manifest: rng_state must be 4 uint64 words, got {rng!r}")
        rng = [_int(v, "rng_state word", 0, 2**64 - 1) for v in rng]
        if not any(rng):
            raise ValueError("manifest: rng_state is all zero (the sampler would only draw 0)")
        parts = m["partitions"]
        if not isinstance(parts, list) or len(parts) != len(PARTS):
            raise ValueError(f"manifest: partitions must list {PARTS}")
        files = m["files"]
        if not isinstance(files, dict):
            raise ValueError("manifest: files must be a mapping")
        for p, (name, part) in enumerate(zip(PARTS, parts)):
            if not isinstance(part, dict) or part.get("name") != name:
                raise ValueError(f"manifest: partition {p} must be {name!r}")
            cap_rows = buf._rows if p == 0 else buf._prows
            rows = _int(part["rows"], f"{name}.rows", 0, cap_rows)
            n = _int(part["num_trajectories"], f"{name}.num_trajectories", 0, rows // 2)
            index = _npy.read_npy_into(
                d / f"{name}-index.npy", files.get(f"{name}-index.npy"), (n, 3), np.dtype(np.int64), None, verify
            )
            _check_index(name, index, rows, next_id)
            for i, f in enumerate(buf.fields):
                fn = f"{name}-{i:02d}.npy"
                _npy.read_npy_into(d / fn, files.get(fn), (rows,) + f.shape, f.dtype, buf._arenas[p][i], verify)
            buf.store.restore(p, index[:, 0].copy(), index[:, 1].copy(), index[:, 2].copy(), rows, next_id)
        buf.store.rng_state = rng
    except (KeyError, TypeError, AttributeError, IndexError, OverflowError) as e:
        raise ValueError(f"corrupt replay snapshot manifest in {d}: {e!r}") from None
    return buf

"""Arena memory for the native store: plain numpy arrays, or memory-mapped .npy files.

The C++ store only sees base pointers; the arrays here own the memory. In mmap mode each
arena is a sparse .npy file under ``path``: the OS allocates disk blocks as rows are
written and pages them in and out, so a buffer can exceed RAM.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from .spec import Field

STORAGE_MODES = ("memory", "mmap")


def arena_rows(capacity: int, max_traj_len: int | None) -> int:
    """Rows to allocate for ``capacity`` transitions.

    Each trajectory takes T+1 rows and never wraps around the ring, so the arena needs
    some slack: 1/8 extra rows plus one maximal trajectory. FIFO eviction keeps stored
    transitions <= capacity; when trajectories average fewer than ~8 transitions, or are
    very long relative to capacity, the row limit may evict a little earlier.
    """
    longest = (max_traj_len + 1) if max_traj_len else 0
    return int(capacity + capacity // 8 + 16 + longest)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def allocate(
    fields: list[Field], rows: int, storage: str, path: str | os.PathLike | None, tag: str
) -> list[np.ndarray]:
    """One zeroed arena (rows, *field.shape) per field."""
    if rows == 0:
        return [np.zeros((0,) + f.shape, f.dtype) for f in fields]
    if storage == "memory":
        # np.zeros maps fresh zero pages lazily: untouched capacity costs no RAM.
        return [np.zeros((rows,) + f.shape, f.dtype) for f in fields]
    if storage != "mmap":
        raise ValueError(f"storage must be one of {STORAGE_MODES}, got {storage!r}")
    if path is None:
        raise ValueError("storage='mmap' needs path= (a directory for the arena files)")
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i, f in enumerate(fields):
        fn = root / f"arena-{tag}-{i:02d}-{_safe(f.name)}.npy"
        out.append(np.lib.format.open_memmap(fn, mode="w+", dtype=f.dtype, shape=(rows,) + f.shape))
    return out

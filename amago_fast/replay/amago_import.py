"""Import AMAGO replay buffers (``<buffer>/fifo`` and ``<buffer>/protected``).

AMAGO writes one file per trajectory, ``<env>_<random id>_<unix time>.npz`` holding
``_OBS_KEY_<key>`` (T+1, ...), ``rl2s`` (T+1, 1+A), ``time_idxs`` (T+1, 1), ``rews``
(T, 1), ``dones`` (T, 1) and ``actions`` (T, A); its older ``.traj`` format is a pickled
Trajectory object, refused unless ``allow_pickle=True`` (pickle can run arbitrary code).
Trajectories are added oldest first (by the time in the file name) so FIFO order holds.
A file that cannot be used (truncated, not a zip, missing keys, NaN/inf values, another
env's shapes) is skipped with a warning naming it and counted; the import goes on. AMAGO's
files are the user's data: nothing is moved or deleted.
"""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

OBS_KEY_PREFIX = "_OBS_KEY_"
_REQUIRED = ("rl2s", "time_idxs", "rews", "dones", "actions")


def _buffer_dir(directory) -> Path:
    """The directory holding fifo/ and protected/: ``directory`` or ``directory/buffer``."""
    d = Path(directory)
    for cand in (d, d / "buffer"):
        if (cand / "fifo").is_dir() or (cand / "protected").is_dir():
            return cand
    raise ValueError(f"directory={str(d)!r} holds no AMAGO buffer (no fifo/ or protected/)")


def trajectory_time_key(p: Path) -> tuple:
    """Write order of an AMAGO file: the unix time ending its name (`<env>_<id>_<time>.npz`),
    else its modification time; ties break by name."""
    try:  # AMAGO names end in _<unix time>
        return (float(p.stem.rsplit("_", 1)[-1]), p.name)
    except ValueError:
        return (p.stat().st_mtime, p.name)


def list_trajectory_files(directory, allow_pickle: bool = False) -> dict[str, list[Path]]:
    """{'fifo': [...], 'protected': [...]}, each oldest first."""
    root = _buffer_dir(directory)
    out = {}
    for part in ("fifo", "protected"):
        d = root / part
        files = sorted(d.iterdir(), key=trajectory_time_key) if d.is_dir() else []
        pickles = [f for f in files if f.suffix == ".traj"]
        if pickles and not allow_pickle:
            raise ValueError(
                f"{d} holds {len(pickles)} pickled .traj files; they can run arbitrary "
                "code when loaded: pass allow_pickle=True only for trusted data"
            )
        out[part] = [f for f in files if f.suffix in (".npz", ".traj")]
    return out


def read_trajectory(path: Path) -> dict:
    """One AMAGO trajectory file as {'obs': {key: (T+1, ...)}, 'rl2s', 'time_idxs',
    'actions', 'rews', 'dones'} numpy arrays."""
    if path.suffix == ".traj":
        try:
            with open(path, "rb") as fh:
                obj = pickle.load(fh)  # only reached with allow_pickle=True
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as e:
            raise ValueError(f"{path}: not a readable pickled AMAGO trajectory ({e})") from None
        if not callable(getattr(obj, "freeze", None)):
            raise ValueError(f"{path}: unpickled {type(obj).__name__} is not an AMAGO Trajectory")
        raw = obj.freeze().to_dict()
    else:
        try:
            # our own handle: np.load leaks the one it opens when the zip is unreadable
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                raw = {k: z[k] for k in z.files}
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, zlib.error) as e:
            raise ValueError(f"{path}: not a readable AMAGO .npz file ({e})") from None
    missing = [k for k in _REQUIRED if k not in raw]
    obs = {k[len(OBS_KEY_PREFIX) :]: np.ascontiguousarray(v) for k, v in raw.items() if k.startswith(OBS_KEY_PREFIX)}
    if missing or not obs:
        raise ValueError(f"{path}: missing keys {missing or [OBS_KEY_PREFIX + '<key>']}")
    t = {k: np.ascontiguousarray(raw[k]) for k in _REQUIRED}
    t["obs"] = obs
    bad = [
        k
        for k, v in [*obs.items(), *((k, t[k]) for k in _REQUIRED)]
        if v.dtype.kind in "fc" and not np.isfinite(v).all()
    ]
    if bad:
        raise ValueError(f"{path}: NaN/inf values in {bad}")
    return t


SKIPPABLE = (ValueError, TypeError, KeyError, OSError)  # what one bad file may raise


def _skip(path: Path, err: Exception, skipped: list) -> None:
    skipped.append((str(path), str(err)))
    warnings.warn(f"AMAGO import: skipped {path.name}: {err}", stacklevel=3)


def _spec(t: dict) -> tuple[dict, int]:
    obs_fields = {k: (v.shape[1:], v.dtype) for k, v in t["obs"].items()}
    return obs_fields, int(t["actions"].shape[1])


def _add(buf, t: dict, protected: bool, path: Path) -> int:
    try:
        return buf.add_trajectory(
            t["obs"], t["rl2s"], t["time_idxs"], t["actions"], t["rews"], t["dones"], protected=protected
        )
    except (ValueError, TypeError) as e:
        raise type(e)(f"{path}: {e}") from None


def import_into(buf, directory, allow_pickle: bool = False, skipped: list | None = None) -> list[int]:
    """Append every usable trajectory of an AMAGO buffer directory to ``buf``; returns new
    ids. Unusable files are skipped with a warning; ``skipped`` (a list, if given) receives
    (path, reason) for each, and a summary warning gives the count."""
    files = list_trajectory_files(directory, allow_pickle)
    ids, skips = [], []
    for part in ("protected", "fifo"):  # protected first: FIFO eviction never touches it
        for f in files[part]:
            try:
                ids.append(_add(buf, read_trajectory(f), part == "protected", f))
            except SKIPPABLE as e:
                _skip(f, e, skips)
    total = len(files["protected"]) + len(files["fifo"])
    if skips and not ids:
        raise ValueError(
            f"directory={str(directory)!r}: none of its {total} files could be imported (first: {skips[0][1]})"
        )
    if skips:
        warnings.warn(
            f"AMAGO import: skipped {len(skips)} of {total} files in {directory} (imported {len(ids)})", stacklevel=2
        )
    if skipped is not None:
        skipped.extend(skips)
    return ids


def import_amago(
    directory: str | os.PathLike,
    capacity: int | None = None,
    protected_capacity: int | None = None,
    allow_pickle: bool = False,
    **kwargs: Any,
):
    """New ReplayBuffer holding an AMAGO buffer directory (``<dir>`` with fifo/ and
    protected/, or its parent holding ``buffer/``). The field spec is read from the
    first file; capacity defaults to the stored transitions (x2, room to keep training),
    protected_capacity to the protected transitions. kwargs go to ReplayBuffer."""
    from .buffer import ReplayBuffer

    files = list_trajectory_files(directory, allow_pickle)
    all_files = files["protected"] + files["fifo"]
    if not all_files:
        raise ValueError(f"directory={str(directory)!r}: the AMAGO buffer is empty")
    # the field spec is the one most files share (one foreign file, even the first, is skipped)
    specs: dict[str, tuple] = {}
    votes: dict[str, int] = {}
    lengths: dict[Path, tuple[str, int]] = {}
    why = ""
    for f in all_files:
        try:
            t = read_trajectory(f)
        except SKIPPABLE as e:
            why = why or str(e)
            continue
        spec = _spec(t)
        key = repr(spec)
        specs.setdefault(key, spec)
        votes[key] = votes.get(key, 0) + 1
        lengths[f] = (key, int(t["actions"].shape[0]))
    if not votes:
        raise ValueError(
            f"directory={str(directory)!r}: none of its {len(all_files)} files is a readable "
            f"AMAGO trajectory (first: {why})"
        )
    best = max(votes, key=lambda k: votes[k])  # first seen wins ties (dicts keep order)
    obs_fields, A = specs[best]

    def total(part: str) -> int:
        return sum(n for f in files[part] if f in lengths and lengths[f][0] == best for n in [lengths[f][1]])

    if capacity is None:
        capacity = max(2 * total("fifo"), 1)
    if protected_capacity is None and files["protected"]:
        protected_capacity = total("protected")
    buf = ReplayBuffer(obs_fields, A, capacity=capacity, protected_capacity=protected_capacity, **kwargs)
    import_into(buf, directory, allow_pickle)
    return buf

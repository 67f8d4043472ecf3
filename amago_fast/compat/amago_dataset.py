"""AMAGO's dataset interface (``amago.loading.RLDataset``) backed by the C++ ReplayBuffer.

AMAGO's actors write one ``.npz`` file per finished trajectory into the dataset's
``save_new_trajs_to`` directory; its default ``DiskTrajDataset`` then reads a file from
disk for every training item. This adapter keeps AMAGO's directory layout and file
protocol but ingests each new file once into an in-memory (or mmap) ``ReplayBuffer`` at
the end of every collection phase, and serves training items from native window sampling.

    dset = AmagoReplayDataset(dset_root="runs", dset_name="tmaze", capacity=1_000_000)
    experiment = amago.Experiment(..., dataset=dset, dloader_workers=0)

Semantics kept from AMAGO:
- layout ``<dset_root>/<dset_name>/buffer/{fifo,protected}``; actors write into ``fifo``;
  files already in ``protected`` are loaded as protected trajectories (never evicted);
- FIFO: the oldest fifo trajectories are evicted when ``capacity`` (in transitions, not
  files) is exceeded; with ``keep_files=True`` (default) the files of evicted
  trajectories are deleted, so the directory always mirrors the buffer and a restarted
  run reloads exactly what the buffer held (AMAGO deletes its oldest files the same way);
- items: one window per ``__getitem__``, with AMAGO's ``RLData`` fields (obs dict, rl2s,
  time_idxs, actions, rews, dones), unpadded, so AMAGO's ``RLData_pad_collate`` pads
  them with its 4.0 sentinel and derives its mask from the padded ``rl2s`` as usual.

Use ``dloader_workers=0``: sampling runs in C++ in the main process and is faster than
worker processes, which would each hold a stale copy of the buffer.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from amago_fast.compat._amago_npz import load_amago_npz, npz_sort_key
from amago_fast.replay.reference import PADDING_MODES, start_bounds

__all__ = ["AmagoReplayDataset", "RLData"]

PADDED_SAMPLING = PADDING_MODES


@dataclass
class RLData:
    """One training item, field for field AMAGO's ``amago.loading.RLData`` (used without amago)."""

    obs: Dict[str, torch.Tensor]
    """{key: (n+1, ...)}"""
    rl2s: torch.Tensor
    """(n+1, 1+A) float32"""
    rews: torch.Tensor
    """(n, 1) float32"""
    dones: torch.Tensor
    """(n, 1) bool"""
    actions: torch.Tensor
    """(n, A) float32"""
    time_idxs: torch.Tensor
    """(n+1, 1) int64"""

    def __len__(self) -> int:
        return len(self.actions)


def _amago_loading() -> Tuple[type, type]:
    """(RLDataset base, RLData class): AMAGO's when it imports cleanly, ours otherwise."""
    try:
        import importlib.util

        if importlib.util.find_spec("amago") is None:
            return Dataset, RLData
        from amago.loading import RLData as AmagoRLData
        from amago.loading import RLDataset

        return RLDataset, AmagoRLData
    except Exception:
        return Dataset, RLData


_BASE, _ITEM = _amago_loading()


def _raw_start(rng: np.random.Generator, n: int, L: int, mode: str) -> int:
    """A window's raw start (before clipping at 0), uniform over the padded_sampling range of
    docs/data.md (`replay.reference.start_bounds`, the rule the C++ sampler implements)."""
    lo, hi = start_bounds(n, L, mode)
    return int(rng.integers(lo, hi + 1))


class AmagoReplayDataset(_BASE):  # type: ignore[misc, valid-type]
    """AMAGO ``RLDataset`` over an ``amago_fast.ReplayBuffer``.

    Args:
        dset_root, dset_name: AMAGO's dataset location (files live under
            ``<dset_root>/<dset_name>/buffer/{fifo,protected}``).
        capacity: FIFO capacity in transitions (timesteps).
        protected_capacity: capacity for protected trajectories (None: the buffer's default).
        keep_files: keep each ingested fifo file until its trajectory is evicted (True), or
            delete it as soon as it is ingested (False; the buffer then holds the only copy).
        chunk_size: windows drawn per native ``sample`` call; items are served from the chunk.
        seed: the buffer's RNG seed (used when the buffer is created here).
        buffer: an existing ReplayBuffer to use instead of creating one from the first file
            (the directories' files are added to it, so give an empty one unless that is meant).
        storage, path: passed to the ReplayBuffer ("memory" or "mmap").
    """

    def __init__(
        self,
        dset_root: str,
        dset_name: str,
        capacity: int = 1_000_000,
        protected_capacity: Optional[int] = None,
        keep_files: bool = True,
        chunk_size: int = 256,
        seed: int = 0,
        buffer: Any = None,
        storage: str = "memory",
        path: Optional[str] = None,
    ):
        if _BASE is not Dataset:
            try:
                super().__init__(dset_name=dset_name)
            except TypeError:  # AMAGO versions whose RLDataset takes no arguments
                super().__init__()
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
        self.dset_name = dset_name
        root = os.path.join(dset_root, dset_name, "buffer")
        self.fifo_path = os.path.join(root, "fifo")
        self.protected_path = os.path.join(root, "protected")
        os.makedirs(self.fifo_path, exist_ok=True)
        os.makedirs(self.protected_path, exist_ok=True)
        self.capacity, self.protected_capacity = capacity, protected_capacity
        self.keep_files, self.chunk_size, self.seed = keep_files, chunk_size, seed
        self.storage, self.storage_path = storage, path
        self.buffer = buffer
        self.experiment = None
        self.items_per_epoch: Optional[int] = None
        self.max_seq_len: Optional[int] = None
        self.padded_sampling = "none"
        self.has_edit_rights = True
        self._ingested: set = set()  # every file path already in the buffer (or skipped for good)
        self._fifo_files: Deque[Tuple[int, str]] = deque()  # (traj id, path), oldest first
        self._chunk: List[Any] = []
        self._lengths: Dict[int, int] = {}
        self._np_rng: Optional[np.random.Generator] = None
        self._np_seed: Optional[int] = None
        self._stats = {"ingested": 0, "unreadable": 0, "deleted": 0}
        self._ingest_dir(self.protected_path, protected=True)
        self._ingest_dir(self.fifo_path, protected=False)

    # ---- configuration (AMAGO calls one of these before training) ---------------------

    def configure(
        self,
        items_per_epoch: int,
        max_seq_len: Optional[int],
        padded_sampling: str = "none",
        has_edit_rights: bool = True,
    ) -> None:
        """Set the epoch length, window length and padding mode AMAGO trains with."""
        if not isinstance(items_per_epoch, int) or items_per_epoch < 1:
            raise ValueError(f"items_per_epoch must be a positive int, got {items_per_epoch!r}")
        if max_seq_len is not None and (not isinstance(max_seq_len, int) or max_seq_len < 1):
            raise ValueError(f"max_seq_len must be a positive int or None, got {max_seq_len!r}")
        if padded_sampling not in PADDED_SAMPLING:
            raise ValueError(f"padded_sampling must be one of {PADDED_SAMPLING}, got {padded_sampling!r}")
        self.items_per_epoch = items_per_epoch
        self.max_seq_len = max_seq_len
        self.padded_sampling = padded_sampling
        self.has_edit_rights = bool(has_edit_rights)
        self._chunk = []

    def configure_from_experiment(self, experiment: Any) -> None:
        """Read the settings from an ``amago.Experiment`` (same attributes AMAGO reads)."""
        accelerator = getattr(experiment, "accelerator", None)
        procs = getattr(accelerator, "num_processes", 1) if accelerator is not None else 1
        self.experiment = experiment
        self.configure(
            items_per_epoch=int(experiment.train_batches_per_epoch * experiment.batch_size * procs),
            max_seq_len=experiment.max_seq_len,
            padded_sampling=getattr(experiment, "padded_sampling", "none"),
            has_edit_rights=getattr(experiment, "has_dset_edit_rights", True),
        )

    def check_configured(self) -> None:
        if self.items_per_epoch is None:
            raise ValueError("dataset not configured: call configure() or configure_from_experiment() first")

    # ---- AMAGO's dataset protocol -----------------------------------------------------

    @property
    def save_new_trajs_to(self) -> str:
        """Where AMAGO's actors write finished trajectories (.npz)."""
        return self.fifo_path

    @property
    def ready_for_training(self) -> bool:
        return self.items_per_epoch is not None and self.buffer is not None and self.buffer.num_trajectories > 0

    def on_end_of_collection(self, experiment: Any = None) -> Dict[str, Any]:
        """Ingest the trajectory files written since the last call; return log metrics."""
        before = dict(self._stats)
        self._ingest_dir(self.fifo_path, protected=False)
        self._chunk = []  # new data: do not serve windows drawn before it arrived
        return {
            "Trajectories in Replay Buffer": self.buffer.num_trajectories if self.buffer is not None else 0,
            "Timesteps in Replay Buffer": self.buffer.num_timesteps if self.buffer is not None else 0,
            "Trajectory Files Ingested": self._stats["ingested"] - before["ingested"],
            "Trajectory Files Deleted": self._stats["deleted"] - before["deleted"],
            "Unreadable Trajectory Files Skipped": self._stats["unreadable"] - before["unreadable"],
        }

    def on_end_of_epoch(self, epoch: int) -> Dict[str, Any]:
        """Older AMAGO versions call this hook instead of ``on_end_of_collection``."""
        return self.on_end_of_collection(self.experiment)

    def get_description(self) -> str:
        buf = self.buffer
        return (
            "AmagoReplayDataset (amago_fast C++ ReplayBuffer)\n"
            f"\t\t FIFO path: {self.fifo_path}\n"
            f"\t\t Protected path: {self.protected_path}\n"
            f"\t\t FIFO capacity (timesteps): {self.capacity}\n"
            f"\t\t Trajectories: {buf.num_trajectories if buf is not None else 0}\n"
            f"\t\t Timesteps: {buf.num_timesteps if buf is not None else 0}\n"
            f"\t\t Max sequence length: {self.max_seq_len}\n"
            f"\t\t Padded sampling: {self.padded_sampling}\n"
        )

    def sample_random_trajectory(self) -> Any:
        """A whole stored trajectory, chosen uniformly, as an RLData item."""
        self._require_data()
        ids = self.buffer.trajectory_ids()
        tid = int(ids[self._rng().integers(len(ids))])
        n = self._length(tid)
        return self._items(self.buffer.gather([tid], [0], n))[0]

    def __len__(self) -> int:
        self.check_configured()
        return self.items_per_epoch

    def __getitem__(self, i: int) -> Any:
        self.check_configured()
        self._require_data()
        if not self._chunk:
            L = self.max_seq_len if self.max_seq_len is not None else self._longest()
            self._chunk = self._items(self._sample(self.chunk_size, L))[::-1]  # pop() = draw order
        return self._chunk.pop()

    def delete(self, delete_protected: bool = False) -> None:
        """Remove the dataset's files (fifo; protected too if asked) and empty the buffer."""
        if not self.has_edit_rights:
            return
        shutil.rmtree(self.fifo_path, ignore_errors=True)
        os.makedirs(self.fifo_path, exist_ok=True)
        if delete_protected:
            shutil.rmtree(self.protected_path, ignore_errors=True)
            os.makedirs(self.protected_path, exist_ok=True)
        # The buffer cannot drop single trajectories; rebuild it from what is left on disk.
        self.buffer, self._ingested, self._fifo_files, self._chunk = None, set(), deque(), []
        self._lengths = {}
        self._ingest_dir(self.protected_path, protected=True)

    # ---- internals ---------------------------------------------------------------------

    def _require_data(self) -> None:
        if self.buffer is None or self.buffer.num_trajectories == 0:
            raise ValueError(
                f"no trajectories yet: AMAGO's actors write them to {self.fifo_path}, and "
                "on_end_of_collection() loads them"
            )

    def _length(self, tid: int) -> int:
        n = self._lengths.get(tid)
        if n is None:
            n = self._lengths[tid] = int(self.buffer.trajectory(tid)["actions"].shape[0])
        return n

    def _longest(self) -> int:
        return max(self._length(int(t)) for t in self.buffer.trajectory_ids())

    def _rng(self) -> np.random.Generator:
        info = torch.utils.data.get_worker_info()
        seed = self.seed if info is None else info.seed
        if self._np_rng is None or self._np_seed != seed:
            self._np_rng, self._np_seed = np.random.default_rng(seed), seed
        return self._np_rng

    def _sample(self, B: int, L: int) -> Any:
        """B windows: native draws in the main process; in a DataLoader worker (a forked copy
        of the buffer whose RNG state equals every other worker's) draw here from the
        worker's own seed and cut natively with ``gather``."""
        if torch.utils.data.get_worker_info() is None:
            return self.buffer.sample(B, L, padded_sampling=self.padded_sampling)
        rng = self._rng()
        ids = self.buffer.trajectory_ids()
        pick = ids[rng.integers(len(ids), size=B)]
        starts = [_raw_start(rng, self._length(int(t)), L, self.padded_sampling) for t in pick]
        return self.buffer.gather(pick, starts, L)

    def _make_buffer(self, first: Dict[str, Any]) -> None:
        from amago_fast import ReplayBuffer

        fields = {k: (tuple(v.shape[1:]), v.dtype) for k, v in first["obs"].items()}
        self.buffer = ReplayBuffer(
            fields=fields,
            action_dim=int(first["actions"].shape[-1]),
            capacity=self.capacity,
            protected_capacity=self.protected_capacity,
            storage=self.storage,
            path=self.storage_path,
            seed=self.seed,
        )

    def _ingest_dir(self, directory: str, protected: bool) -> None:
        names = [n for n in os.listdir(directory) if n.endswith(".npz")]
        paths = sorted((os.path.join(directory, n) for n in names), key=npz_sort_key)
        for p in paths:
            if p in self._ingested:
                continue
            try:
                traj = load_amago_npz(p)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
                # A file being written, or truncated by a crash: leave it, retry next time.
                self._stats["unreadable"] += 1
                self._last_error = f"{p}: {exc}"
                continue
            if self.buffer is None:
                self._make_buffer(traj)
            tid = self.buffer.add_trajectory(
                traj["obs"],
                traj["rl2s"],
                traj["time_idxs"],
                traj["actions"],
                traj["rews"],
                traj["dones"],
                protected=protected,
            )
            self._ingested.add(p)
            self._stats["ingested"] += 1
            if protected:
                continue
            if self.keep_files or not self.has_edit_rights:
                self._fifo_files.append((int(tid), p))
            else:
                self._remove(p)
        self._drop_evicted_files()

    def _drop_evicted_files(self) -> None:
        if self.buffer is None or not self._fifo_files:
            return
        live = set(int(t) for t in self.buffer.trajectory_ids())
        while self._fifo_files and self._fifo_files[0][0] not in live:
            tid, p = self._fifo_files.popleft()
            self._lengths.pop(tid, None)
            if self.has_edit_rights:
                self._remove(p)
                self._ingested.discard(p)  # gone from disk: no need to remember it

    def _remove(self, path: str) -> None:
        try:
            os.remove(path)
            self._stats["deleted"] += 1
        except FileNotFoundError:
            pass

    def _items(self, batch: Any) -> List[Any]:
        """Split a padded Batch into unpadded per-window items (views, no copies)."""
        n_obs = batch.mask.sum(dim=1).tolist()  # real rows come first in every window
        items = []
        for b, n in enumerate(n_obs):
            items.append(
                _ITEM(
                    obs={k: v[b, :n] for k, v in batch.obs.items()},
                    rl2s=batch.rl2s[b, :n],
                    rews=batch.rews[b, : n - 1],
                    dones=batch.dones[b, : n - 1],
                    actions=batch.actions[b, : n - 1],
                    time_idxs=batch.time_idxs[b, :n],
                )
            )
        return items

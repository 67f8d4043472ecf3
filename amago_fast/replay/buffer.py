"""ReplayBuffer: the Python face of the C++ trajectory store and window sampler."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch

from .. import _C
from . import reference, relabeled
from .batch import Batch
from .spec import OBS_PREFIX, Field, check_array, make_fields, one_hot_actions, spec_from_spaces, to_numpy
from .storage import STORAGE_MODES, allocate, arena_rows

WEIGHTINGS = ("uniform", "length")


def _positive_int(v: Any, name: str, allow_none: bool = False) -> int | None:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return int(v)


def _int_ids(x: Any, name: str) -> np.ndarray:
    """(n,) int64 from a sequence of ints; floats are refused, never truncated."""
    a = np.asarray(x).reshape(-1)
    if a.size and a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers, got dtype {a.dtype} ({x!r:.60})")
    if a.size and a.dtype.kind == "u" and int(a.max()) >= 2**63:
        raise ValueError(f"{name}: {int(a.max())} does not fit int64")
    return np.ascontiguousarray(a, dtype=np.int64)


if TYPE_CHECKING:
    from .stream import StreamWriter


class ReplayBuffer:
    """Whole trajectories in native arenas; samples padded training windows in C++.

    Capacity counts transitions. FIFO evicts whole oldest non-protected trajectories;
    protected trajectories (demonstrations, offline data) have their own capacity and
    are never evicted (adding past it is an error). Trajectories are chosen uniformly
    (or proportionally to length), then a window is placed by docs/data.md's
    ``padded_sampling`` rules. All random draws come from one seeded generator on the
    calling thread: same seed + same calls -> same batches, whatever ``num_threads``.
    """

    def __init__(
        self,
        fields: Mapping[str, tuple],
        action_dim: int,
        capacity: int = 1_000_000,
        protected_capacity: int | None = None,
        max_traj_len: int | None = None,
        storage: str = "memory",
        path: str | os.PathLike | None = None,
        seed: int = 0,
        num_threads: int | None = None,
        relabeler: Any = None,
        discrete_actions: bool = False,
    ):
        """fields: {obs_key: (shape, dtype)}; action_dim: A (actions are (T, A) float32).
        discrete_actions: also accept integer action indices and store them one-hot
        (set by from_spaces for a Discrete action space)."""
        self.capacity = _positive_int(capacity, "capacity")
        self.protected_capacity = _positive_int(protected_capacity, "protected_capacity", True)
        self.max_traj_len = _positive_int(max_traj_len, "max_traj_len", True)
        if storage not in STORAGE_MODES:
            raise ValueError(f"storage must be one of {STORAGE_MODES}, got {storage!r}")
        if storage == "mmap" and path is None:
            raise ValueError("storage='mmap' needs path= (a directory for the arena files)")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
            raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
        if relabeler is not None and not callable(getattr(relabeler, "relabel", None)):
            raise TypeError("relabeler must have a relabel(trajs, rng_seed) method")
        self.fields: list[Field] = make_fields(fields, action_dim)
        self.action_dim = int(action_dim)
        self.storage, self.path, self.seed = storage, path, int(seed)
        self.num_threads = num_threads
        self.relabeler = relabeler
        for attr in ("goal_key", "achieved_key"):  # fail here, not at the first sample()
            key = getattr(relabeler, attr, None)
            if isinstance(key, str) and key not in self.obs_keys:
                raise ValueError(f"relabeler.{attr}={key!r} is not an observation key of this buffer ({self.obs_keys})")
        self.discrete_actions = bool(discrete_actions)
        self.dropped_nonfinite = 0  # trajectories add_trajectory(nonfinite="drop") refused
        self._out_cache: tuple | None = None
        self._rows = arena_rows(self.capacity, self.max_traj_len)
        pcap = self.protected_capacity or 0
        self._prows = arena_rows(pcap, self.max_traj_len) if pcap else 0
        self._store = _C.ReplayStore(
            [f.row_bytes for f in self.fields],
            [f.obs_like for f in self.fields],
            self.capacity,
            self._rows,
            pcap,
            self._prows,
            self.seed,
        )
        self._arenas = [
            allocate(self.fields, self._rows, storage, path, "fifo"),
            allocate(self.fields, self._prows, storage, path, "protected"),
        ]
        self._store.attach(0, self._arenas[0])
        if pcap:
            self._store.attach(1, self._arenas[1])
        self._store.name_fields(
            [f.name for f in self.fields],
            [np.dtype(f.dtype) for f in self.fields],
            [list(f.shape) for f in self.fields],
        )

    @classmethod
    def from_spaces(cls, observation_space: Any, action_space: Any, **kwargs) -> "ReplayBuffer":
        """Buffer for gymnasium spaces (Dict/Box/Discrete/MultiBinary observations;
        Discrete (one-hot), Box, MultiBinary actions). kwargs as in ``__init__``."""
        from gymnasium import spaces

        obs_fields, A = spec_from_spaces(observation_space, action_space)
        kwargs.setdefault("discrete_actions", isinstance(action_space, spaces.Discrete))
        return cls(obs_fields, A, **kwargs)

    # ------------------------------------------------------------------ properties
    @property
    def num_threads(self) -> int:
        return self._num_threads

    @num_threads.setter
    def num_threads(self, v: int | None) -> None:
        self._num_threads = min(4, os.cpu_count() or 1) if v is None else _positive_int(v, "num_threads")

    @property
    def obs_keys(self) -> list[str]:
        return [f.name[len(OBS_PREFIX) :] for f in self.fields if f.name.startswith(OBS_PREFIX)]

    @property
    def obs_fields(self) -> dict:
        """{obs_key: (shape, dtype)} (the explicit field spec this buffer was built from)."""
        return {f.name[len(OBS_PREFIX) :]: (f.shape, f.dtype) for f in self.fields if f.name.startswith(OBS_PREFIX)}

    @property
    def num_timesteps(self) -> int:
        """Stored transitions (FIFO + protected)."""
        return int(self._store.num_timesteps)

    @property
    def num_trajectories(self) -> int:
        return int(self._store.num_trajectories)

    def __len__(self) -> int:
        return self.num_timesteps

    def __repr__(self) -> str:
        return (
            f"ReplayBuffer(obs={self.obs_keys}, action_dim={self.action_dim}, "
            f"timesteps={self.num_timesteps}/{self.capacity}, "
            f"trajectories={self.num_trajectories}, storage={self.storage!r})"
        )

    # ------------------------------------------------------------------ writes
    def add_trajectory(
        self,
        obs: Any,
        rl2s: Any,
        time_idxs: Any,
        actions: Any,
        rews: Any,
        dones: Any,
        protected: bool = False,
        nonfinite: str = "raise",
    ) -> int:
        """Store one trajectory of T transitions; returns its id.

        NaN or inf in any float field (observations, rl2s, actions, rewards) would poison
        every weight trained on it: nonfinite="raise" (default) raises ValueError naming the
        field and row; "drop" stores nothing, counts it in ``dropped_nonfinite`` and returns -1.

        obs: {key: (T+1, ...)} (or one array if the buffer has a single obs key),
        rl2s (T+1, 1+A), time_idxs (T+1,) or (T+1, 1), actions (T, A),
        rews (T,) or (T, 1), dones (T,) or (T, 1) bool. With ``discrete_actions``,
        actions may also be integer indices (T,).
        """
        if self.discrete_actions:
            actions = one_hot_actions(actions, self.action_dim)
        a = to_numpy(actions, "actions")
        if a.ndim != 2 or a.shape[0] < 1:
            raise ValueError(f"actions: expected shape (T, {self.action_dim}) with T >= 1, got {a.shape}")
        T = int(a.shape[0])
        if nonfinite not in ("raise", "drop"):
            raise ValueError(f"nonfinite must be 'raise' or 'drop', got {nonfinite!r}")
        arrays = self.check_trajectory(obs, rl2s, time_idxs, actions, rews, dones, T, "")
        bad = self._first_nonfinite(arrays)
        if bad is not None:
            if nonfinite == "raise":
                raise ValueError(
                    f"{bad}: NaN or inf in the trajectory (pass nonfinite='drop' to skip such "
                    "trajectories and count them)"
                )
            self.dropped_nonfinite += 1
            return -1
        return self._add_checked(arrays, T, bool(protected))

    @property
    def store(self) -> "_C.ReplayStore":
        """The native store behind this buffer (`amago_fast._C.ReplayStore`): the low-level
        interface the replay components build on (views, window cuts, snapshot and
        restore). Its methods skip this class's Python checks; prefer the buffer's own."""
        return self._store

    def _first_nonfinite(self, arrays: list) -> str | None:
        """'<field> row <t>' of the first NaN/inf in a trajectory's float fields, else None."""
        for f, x in zip(self.fields, arrays):
            if x.dtype.kind == "f" and not np.isfinite(x).all():
                name = f"obs[{f.name[len(OBS_PREFIX) :]!r}]" if f.name.startswith(OBS_PREFIX) else f.name
                row = int(np.flatnonzero(~np.isfinite(x).reshape(len(x), -1).all(1))[0])
                return f"{name} row {row}"
        return None

    def check_trajectory(self, obs, rl2s, time_idxs, actions, rews, dones, T: int, lead: str = "") -> list:
        """One trajectory's arrays checked against the buffer's fields (T+1 observation
        rows, T transition rows; dtypes cast, shapes and time indices checked), in field
        order; errors name the field, prefixed with `lead`. Raises TypeError/ValueError."""
        if not isinstance(obs, Mapping):
            if len(self.obs_keys) != 1:
                raise TypeError(f"obs must be a dict with keys {self.obs_keys}")
            obs = {self.obs_keys[0]: obs}
        if set(obs) != set(self.obs_keys):
            raise ValueError(f"obs keys {sorted(obs)} do not match the buffer's {sorted(self.obs_keys)}")
        given = {"rl2s": rl2s, "time_idxs": time_idxs, "actions": actions, "rews": rews, "dones": dones}
        out = []
        for f in self.fields:
            if f.name.startswith(OBS_PREFIX):
                key = f.name[len(OBS_PREFIX) :]
                x, name = obs[key], f"{lead}obs[{key!r}]"
            else:
                x, name = given[f.name], lead + f.name
            rows = T + 1 if f.obs_like else T
            out.append(check_array(x, name, f.dtype, (rows,) + f.shape))
            if f.name == "time_idxs" and out[-1].size and out[-1].min() < 0:
                raise ValueError(f"{name}: time indices must be >= 0, got {out[-1].min()}")
        return out

    def _add_checked(self, arrays: list, T: int, protected: bool) -> int:
        if protected and not self.protected_capacity:
            raise ValueError("protected=True needs a buffer built with protected_capacity")
        cap = self.protected_capacity if protected else self.capacity
        if T > cap:
            raise ValueError(
                f"a trajectory of {T} transitions exceeds {'protected_capacity' if protected else 'capacity'}={cap}"
            )
        tid, _evicted = self._store.add(arrays, T, protected)
        return int(tid)

    def stream(self, num_envs: int) -> "StreamWriter":
        """A writer for ``num_envs`` vectorized envs (see StreamWriter)."""
        from .stream import StreamWriter

        return StreamWriter(self, _positive_int(num_envs, "num_envs"))

    # ------------------------------------------------------------------ reads
    def trajectory_ids(self) -> np.ndarray:
        """Stored ids in sampling order: FIFO oldest first, then protected. (N,) int64"""
        return np.concatenate([self._store.index(0)[0], self._store.index(1)[0]])

    def trajectory(self, traj_id: int) -> dict:
        """Zero-copy read-only views of a stored trajectory: obs {key: (T+1, ...)},
        rl2s (T+1, 1+A), time_idxs (T+1,), actions (T, A), rews (T,), dones (T,).
        The views alias the arena: valid until the trajectory is evicted (copy to keep)."""
        try:
            p, off, T = self._store.locate(int(traj_id))
        except IndexError:
            raise KeyError(f"trajectory {traj_id} is not stored (never added or evicted)") from None
        out: dict = {"obs": {}}
        for f, arena in zip(self.fields, self._arenas[p]):
            v = arena[off : off + (T + 1 if f.obs_like else T)]
            v.flags.writeable = False
            if f.name.startswith(OBS_PREFIX):
                out["obs"][f.name[len(OBS_PREFIX) :]] = v
            else:
                out[f.name] = v
        return out

    def _check_sample_args(self, batch_size, seq_len, padded_sampling, weighting) -> tuple:
        B = _positive_int(batch_size, "batch_size")
        L = _positive_int(seq_len, "seq_len")
        if padded_sampling not in reference.PADDING_MODES:
            raise ValueError(f"padded_sampling must be one of {reference.PADDING_MODES}, got {padded_sampling!r}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        if self.num_trajectories == 0:
            raise ValueError("cannot sample from an empty ReplayBuffer")
        return B, L

    def sample(
        self,
        batch_size: int,
        seq_len: int,
        padded_sampling: str = "none",
        device: Any = None,
        pin_memory: bool = False,
        weighting: str = "uniform",
        out: Batch | None = None,
    ) -> Batch:
        """B windows of L transitions (Batch layout: obs (B, L+1, ...), actions (B, L, A),
        mask (B, L+1), ...). Chooses trajectories uniformly (weighting='length':
        proportionally to length), then places each window by ``padded_sampling``.

        device: move the batch there (from pinned memory with non_blocking when
        pin_memory=True); pin_memory: page-locked outputs (ignored without CUDA).
        out: a CPU Batch of the same shape (e.g. an earlier sample, or a pinned one) to
        overwrite instead of allocating; saves the allocation and page faults per call.
        With a relabeler: chosen trajectories -> ``relabeler.relabel(views, seed)`` ->
        windows cut natively from the relabeled copies (same padding rules).
        """
        B, L = self._check_sample_args(batch_size, seq_len, padded_sampling, weighting)
        outs, tensors, aux = self._alloc(B, L, pin_memory) if out is None else self._reuse(out, B, L)
        if self.relabeler is not None:
            self._sample_relabeled(B, L, padded_sampling, weighting, outs, aux)
        else:
            self._store.sample_into(B, L, padded_sampling, weighting == "length", outs, *aux, self.num_threads)
        if out is not None and (device is None or torch.device(device).type == "cpu"):
            return out
        return self._finish(tensors, aux, device, pin_memory)

    def draw(
        self, batch_size: int, seq_len: int, padded_sampling: str = "none", weighting: str = "uniform"
    ) -> tuple[np.ndarray, np.ndarray]:
        """The random part of ``sample`` alone: (traj_ids (B,), raw_starts (B,)), raw start
        before clipping at 0. ``gather(*draw(...))`` equals ``sample(...)``."""
        B, L = self._check_sample_args(batch_size, seq_len, padded_sampling, weighting)
        return self._store.draw(B, L, padded_sampling, weighting == "length")

    def gather(
        self,
        traj_ids: Sequence[int],
        raw_starts: Sequence[int],
        seq_len: int,
        device: Any = None,
        pin_memory: bool = False,
    ) -> Batch:
        """Cut the given windows (no randomness): traj_ids (B,), raw_starts (B,)."""
        L = _positive_int(seq_len, "seq_len")
        ids, st = _int_ids(traj_ids, "traj_ids"), _int_ids(raw_starts, "raw_starts")
        if len(ids) == 0 or len(ids) != len(st):
            raise ValueError("traj_ids and raw_starts must be non-empty and equally long")
        for i, s in zip(ids.tolist(), st.tolist()):
            try:
                n = int(self._store.locate(i)[2])
            except IndexError:
                raise ValueError(f"traj_ids: trajectory {i} is not stored") from None
            if not -L + 1 <= s <= n - 1:
                raise ValueError(
                    f"raw_starts: start {s} is outside the trajectory {i} of length "
                    f"{n} for seq_len {L} (valid: {-L + 1}..{n - 1})"
                )
        outs, tensors, aux = self._alloc(len(ids), L, pin_memory)
        self._store.gather_into(ids, st, L, outs, *aux, self.num_threads)
        return self._finish(tensors, aux, device, pin_memory)

    def cut_windows(
        self,
        trajs: Sequence[dict],
        seq_len: int,
        padded_sampling: str = "none",
        traj_ids: Sequence[int] | None = None,
        device: Any = None,
        raw_starts: Sequence[int] | None = None,
    ) -> Batch:
        """Windows from given trajectory dicts (e.g. relabeled copies of ``trajectory()``
        views), cut natively; starts drawn from this buffer's generator by the same rules
        as ``sample`` unless raw_starts (B,) is given (each in -L+1..T-1)."""
        L = _positive_int(seq_len, "seq_len")
        if padded_sampling not in reference.PADDING_MODES:
            raise ValueError(f"padded_sampling must be one of {reference.PADDING_MODES}")
        if isinstance(trajs, Mapping) or not isinstance(trajs, Sequence) or not trajs:
            raise ValueError("trajs must be a non-empty list of trajectory dicts")
        B = len(trajs)
        ids = np.full(B, -1, np.int64) if traj_ids is None else _int_ids(traj_ids, "traj_ids")
        if len(ids) != B:
            raise ValueError(f"traj_ids: expected {B} ids, got {len(ids)}")
        st = None
        if raw_starts is not None:
            trajs = [relabeled.canonical(self, t, i) for i, t in enumerate(trajs)]
            st = _int_ids(raw_starts, "raw_starts")
            if len(st) != B:
                raise ValueError(f"raw_starts: expected {B} starts, got {len(st)}")
            for i, (t, s) in enumerate(zip(trajs, st.tolist())):
                n = len(t["actions"])
                if not -L + 1 <= s <= n - 1:
                    raise ValueError(
                        f"raw_starts[{i}]: start {s} is outside trajs[{i}] of length "
                        f"{n} for seq_len {L} (valid: {-L + 1}..{n - 1})"
                    )
        outs, tensors, aux = self._alloc(B, L, False)
        relabeled.cut_into(self, trajs, L, padded_sampling, ids, outs, aux, st)
        return self._finish(tensors, aux, device, False)

    def _sample_relabeled(self, B: int, L: int, mode: str, weighting: str, outs: list, aux: tuple) -> None:
        # choose trajectories -> relabel copies -> cut windows natively. Draw order:
        # all trajectories, the relabeler's seed, then one start per relabeled trajectory.
        ids = self._store.draw_trajs(B, weighting == "length")  # (B,) int64
        trajs = self._store.views(ids)  # read-only zero-copy views, one native call
        seed = int(self._store.next_u64())
        new = self.relabeler.relabel(trajs, seed)
        if not isinstance(new, (list, tuple)) or len(new) != B:
            raise ValueError(f"relabeler.relabel must return a list of {B} trajectory dicts")
        relabeled.cut_into(self, new, L, mode, ids, outs, aux)

    # ------------------------------------------------------------------ batch memory
    def _alloc(self, B: int, L: int, pin_memory: bool) -> tuple:
        pin = bool(pin_memory) and torch.cuda.is_available()  # pinning is a no-op without CUDA
        outs, tensors = [], []
        for f in self.fields:
            shape = (B, L + 1 if f.obs_like else L) + f.batch_shape
            if pin:
                t = torch.empty(shape, dtype=torch.from_numpy(np.empty(0, f.dtype)).dtype, pin_memory=True)
                a = t.numpy()
            else:
                a = np.empty(shape, f.dtype)
                t = torch.from_numpy(a)
            outs.append(a)
            tensors.append(t)
        aux = (np.empty((B, L + 1), np.bool_), np.empty(B, np.int64), np.empty(B, np.int64))
        return outs, tensors, aux

    def _reuse(self, out: Batch, B: int, L: int) -> tuple:
        cached = self._out_cache
        if cached is not None and cached[0] is out and cached[1] == (B, L):
            return cached[2]  # validated on an earlier call: skip the per-field checks
        res = self._check_out(out, B, L)
        self._out_cache = (out, (B, L), res)
        return res

    def _check_out(self, out: Batch, B: int, L: int) -> tuple:
        if not isinstance(out, Batch):
            raise TypeError(f"out must be a Batch, got {type(out).__name__}")
        named = {
            **{OBS_PREFIX + k: v for k, v in out.obs.items()},
            "rl2s": out.rl2s,
            "time_idxs": out.time_idxs,
            "actions": out.actions,
            "rews": out.rews,
            "dones": out.dones,
        }
        tensors = []
        for f in self.fields:
            t = named.get(f.name)
            shape = (B, L + 1 if f.obs_like else L) + f.batch_shape
            if (
                t is None
                or tuple(t.shape) != shape
                or t.device.type != "cpu"
                or not t.is_contiguous()
                or t.numpy().dtype != f.dtype
            ):
                raise ValueError(
                    f"out: field {f.name} is not a contiguous CPU tensor of shape {shape} and dtype {f.dtype}"
                )
            tensors.append(t)
        aux = (out.mask, out.traj_ids, out.starts)
        if tuple(out.mask.shape) != (B, L + 1) or any(tuple(a.shape) != (B,) for a in aux[1:]):
            raise ValueError("out: mask/traj_ids/starts do not match batch_size and seq_len")
        return [t.numpy() for t in tensors], tensors, tuple(a.numpy() for a in aux)

    def _finish(self, tensors: list, aux: tuple, device: Any, pin_memory: bool) -> Batch:
        named = {f.name: t for f, t in zip(self.fields, tensors)}
        mask, ids, starts = (torch.from_numpy(a) for a in aux)
        batch = Batch(
            obs={k[len(OBS_PREFIX) :]: v for k, v in named.items() if k.startswith(OBS_PREFIX)},
            rl2s=named["rl2s"],
            time_idxs=named["time_idxs"],
            actions=named["actions"],
            rews=named["rews"],
            dones=named["dones"],
            mask=mask,
            traj_ids=ids,
            starts=starts,
        )
        if device is not None and torch.device(device).type != "cpu":
            batch = batch.to(device, non_blocking=bool(pin_memory))
        return batch

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike) -> None:
        """Atomic, point-in-time snapshot (manifest.json + .npy arrays, no pickle); see
        docs/replay.md. Safe while other threads add or sample: they wait while the live
        rows are copied into the snapshot files."""
        from .persist import save_buffer

        save_buffer(self, directory)

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike,
        storage: str = "memory",
        path: str | os.PathLike | None = None,
        num_threads: int | None = None,
        relabeler: Any = None,
        verify: bool = True,
    ) -> "ReplayBuffer":
        """Load a snapshot written by ``save``; the next sample equals the one the saved
        buffer would have drawn. verify=True checks file sizes and CRC32 checksums."""
        from .persist import load_buffer

        return load_buffer(
            cls, directory, storage=storage, path=path, num_threads=num_threads, relabeler=relabeler, verify=verify
        )

    def import_amago(self, directory: str | os.PathLike, allow_pickle: bool = False) -> list[int]:
        """Append an AMAGO buffer directory's trajectories; returns the new ids."""
        from .amago_import import import_into

        return import_into(self, directory, allow_pickle=allow_pickle)

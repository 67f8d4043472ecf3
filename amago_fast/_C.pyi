"""Type stub for the native module amago_fast._C (csrc/; built by pybind11).

Hand-written from csrc/replay/bind_replay.cpp and csrc/relabel/*.cpp; tests/replay/
test_stub.py checks that every name the module exports, and every ReplayStore member,
appears here with the native parameter names, so the stub cannot silently rot.
These are internal building blocks: use amago_fast.ReplayBuffer and
amago_fast.relabel.{HERRelabeler, MultiGoalRelabeler}, which validate their inputs.
"""

from typing import Any, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

_I64 = NDArray[np.int64]
# (goals, rews, dones, rl2s, new_len): new arrays of one relabeled trajectory
_Relabeled = tuple[np.ndarray, NDArray[np.float32], NDArray[np.bool_], NDArray[np.float32], int]

class ReplayStore:
    """Native trajectory store and window sampler (use amago_fast.ReplayBuffer)."""

    def __init__(
        self,
        row_bytes: Sequence[int],
        obs_like: Sequence[bool],
        capacity: int,
        rows: int,
        protected_capacity: int,
        protected_rows: int,
        seed: int,
    ) -> None: ...
    def attach(self, partition: int, arenas: Sequence[np.ndarray]) -> None:
        """Bind one writable C-contiguous (rows, ...) arena per field to partition 0 (FIFO)
        or 1 (protected); the store keeps the arrays alive."""
    def add(self, arrays: Sequence[np.ndarray], length: int, protected: bool) -> tuple[int, _I64]:
        """Copy one trajectory in (T+1 or T rows per field); returns (id, evicted ids)."""
    def sample_into(
        self,
        batch_size: int,
        seq_len: int,
        padding: str,
        by_length: bool,
        outs: Sequence[np.ndarray],
        mask: NDArray[np.bool_],
        ids: _I64,
        starts: _I64,
        num_threads: int,
    ) -> None:
        """Draw B windows and gather them into the preallocated batch (GIL released)."""
    def draw(self, batch_size: int, seq_len: int, padding: str, by_length: bool) -> tuple[_I64, _I64]:
        """The draws of sample_into alone: (traj ids (B,), raw starts (B,))."""
    def draw_trajs(self, batch_size: int, by_length: bool) -> _I64:
        """B trajectory ids (uniform or proportional to length)."""
    def draw_starts(self, lengths: ArrayLike, seq_len: int, padding: str) -> _I64:
        """One raw window start per trajectory length, by the padded_sampling rules."""
    def next_u64(self) -> int:
        """One raw 64-bit draw from the store's generator."""
    def name_fields(self, names: Sequence[str], dtypes: Sequence[np.dtype], shapes: Sequence[Sequence[int]]) -> None:
        """Field names ('obs/<key>', 'rl2s', ...), dtypes and per-row shapes; needed by
        views() and cut_into()."""
    def views(self, traj_ids: ArrayLike) -> list[dict[str, Any]]:
        """Read-only zero-copy views of stored trajectories ({'obs': {key: (T+1, ...)},
        'rl2s', 'time_idxs', 'actions', 'rews', 'dones'}), one dict per id."""
    def cut_into(
        self,
        trajs: Sequence[Mapping[str, Any]],
        seq_len: int,
        padding: str,
        traj_ids: ArrayLike,
        raw_starts: ArrayLike | None,
        outs: Sequence[np.ndarray],
        mask: NDArray[np.bool_],
        ids: _I64,
        starts: _I64,
        num_threads: int,
    ) -> list[int]:
        """Cut one window per trajectory dict (starts drawn unless raw_starts is given;
        gather with the GIL released). Returns [], or the indices of the trajectories that
        are not an exact match (then nothing is drawn or written)."""
    def gather_into(
        self,
        traj_ids: ArrayLike,
        raw_starts: ArrayLike,
        seq_len: int,
        outs: Sequence[np.ndarray],
        mask: NDArray[np.bool_],
        ids: _I64,
        starts: _I64,
        num_threads: int,
    ) -> None:
        """Cut the given windows of stored trajectories (no draws)."""
    def index(self, partition: int) -> tuple[_I64, _I64, _I64, int]:
        """(ids, offsets, lengths, head) of one partition."""
    def restore(
        self, partition: int, ids: ArrayLike, offsets: ArrayLike, lengths: ArrayLike, head: int, next_id: int
    ) -> None:
        """Replace a partition's index table (snapshot loading); checks it for corruption."""
    def locate(self, traj_id: int) -> tuple[int, int, int]:
        """(partition, arena offset, length T); IndexError if the id is not stored."""
    def snapshot(
        self, fds: Sequence[Sequence[int]], data_offset: int
    ) -> tuple[list[tuple[_I64, _I64, _I64, int]], list[int], int, tuple[int, int, int]]:
        """Point in time, under one hold of the lock: per partition (ids, compacted offsets,
        lengths, rows), with every field's live rows pwritten to fds[p][f] from byte
        data_offset; plus rng_state, next_id and (errno, partition, field) of a failed
        write (errno 0 when all writes succeeded)."""
    @property
    def num_trajectories(self) -> int: ...
    @property
    def num_timesteps(self) -> int: ...
    @property
    def next_id(self) -> int: ...
    @property
    def rng_state(self) -> list[int]:
        """The xoshiro256** state (4 uint64 words)."""
    @rng_state.setter
    def rng_state(self, value: Sequence[int]) -> None: ...

def relabel_her(
    goals: Sequence[np.ndarray],
    achieved: Sequence[np.ndarray],
    rl2s: Sequence[NDArray[np.float32]],
    dones: Sequence[NDArray[np.bool_]],
    draws: NDArray[np.float64],
    goal_dim: int,
    strategy: int,
    prob: float,
    tolerance: float,
    success_reward: float,
    failure_reward: float,
    terminate_on_success: bool,
    num_threads: int,
) -> list[_Relabeled | None]:
    """Single-goal HER over a batch (GIL released): per trajectory None (not selected)
    or (goals, rews, dones, rl2s, new_len)."""

def relabel_multigoal(
    goals: Sequence[np.ndarray],
    achieved: Sequence[np.ndarray],
    rl2s: Sequence[NDArray[np.float32]],
    dones: Sequence[NDArray[np.bool_]],
    draws: NDArray[np.float64],
    num_goals: int,
    goal_dim: int,
    strategy: int,
    tolerance: float,
    num_threads: int,
) -> list[_Relabeled]:
    """Multi-goal relabeling over a batch (GIL released): per trajectory
    (goals, rews, dones, rl2s, new_len)."""

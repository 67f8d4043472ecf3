"""Multi-goal ("instruction") hindsight relabeling, AMAGO's scheme, run in C++.

An episode asks the agent to reach k goals in order. Observations carry
  goals    (T+1, k, d+1)  the k goal vectors in [..., :d] and a reached flag (0/1) in
                          [..., d]; the active goal is the first one not yet reached
  achieved (T+1, d)       (or (T+1, 1, d)) the goal-space value achieved at each step
Transition t earns reward 1 when achieved[t+1] is within `tolerance` of the active goal
in every coordinate (integers: equal when tolerance is 0); reaching the k-th goal ends
the episode. Relabeling one trajectory:
  1. replay the real instruction: the first n goals were reached, at rows r_1 < .. < r_n;
  2. h = k - n ("all") or h ~ U{0..k-n} ("some"), at most the number of other rows;
  3. pick h distinct rows uniformly among rows 1..T that did not reach a real goal;
     achieved at those rows become alternative goals;
  4. new instruction = reached real goals and alternatives sorted by row, then the
     original goals of the remaining slots (n+h .. k-1);
  5. replay it: recompute rewards, the reward column of rl2s, the reached flags in every
     goals observation and the final done, and cut the trajectory where the k-th goal
     is reached.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import _traj, reference
from .protocol import MultiGoalStrategy


def default_num_threads() -> int:
    """Worker threads used by the C++ kernels when none are given."""
    return max(1, min(os.cpu_count() or 1, 8))


@dataclass
class MultiGoalRelabeler:
    """Relabels sampled trajectories with hindsight goal sequences (see module doc).

    Use as ``ReplayBuffer(..., relabeler=MultiGoalRelabeler(num_goals=2))`` or call
    ``relabel(trajs, rng_seed)`` directly on trajectory dicts.
    """

    num_goals: int
    """k, the number of goals in every instruction (goals observations are (T+1, k, d+1))."""
    strategy: str = "some"
    """"some": add h ~ U{0..k-n} hindsight goals; "all": add k-n; "none": identity."""
    goal_key: str = "goals"
    """Observation key holding the instruction, (T+1, k, d+1)."""
    achieved_key: str = "achieved"
    """Observation key holding the achieved goal-space value, (T+1, d) or (T+1, 1, d)."""
    tolerance: float = 0.0
    """A goal is reached when every coordinate is within this distance (0 = exact)."""
    backend: str = "cpp"
    """"cpp" (the kernel) or "python" (the pure-Python reference, for tests)."""
    num_threads: Optional[int] = None
    """C++ worker threads; None = min(cpu count, 8)."""

    def __post_init__(self) -> None:
        if isinstance(self.num_goals, bool) or not isinstance(self.num_goals, int) or self.num_goals < 1:
            raise ValueError(f"num_goals must be an int >= 1, got {self.num_goals!r}")
        try:
            self.strategy = MultiGoalStrategy(self.strategy)
        except ValueError:
            raise ValueError(
                f"strategy must be one of {[s.value for s in MultiGoalStrategy]}, got {self.strategy!r}"
            ) from None
        if not isinstance(self.tolerance, (int, float)) or not math.isfinite(self.tolerance) or self.tolerance < 0:
            raise ValueError(f"tolerance must be a finite number >= 0, got {self.tolerance!r}")
        if self.backend not in ("cpp", "python"):
            raise ValueError(f"backend must be 'cpp' or 'python', got {self.backend!r}")
        if self.num_threads is not None and (not isinstance(self.num_threads, int) or self.num_threads < 1):
            raise ValueError(f"num_threads must be None or an int >= 1, got {self.num_threads!r}")

    def draws(self, batch_size: int, rng_seed: int) -> np.ndarray:
        """The uniforms both backends consume: (B, 1 + k) float64 from numpy's PCG64
        seeded with rng_seed. Column 0 picks h, column 1 + j the j-th hindsight row."""
        return np.random.default_rng(rng_seed).random((batch_size, 1 + self.num_goals))

    def relabel(self, trajs: list[dict], rng_seed: int) -> list[dict]:
        """Relabel a batch of trajectory dicts; returns new dicts (inputs untouched).

        Changed fields (goal_key, "rews", "dones", "rl2s") are new arrays; every other
        field is a view of the input cut to the new length L <= T.
        """
        trajs = _traj.check_batch(trajs, rng_seed)
        if self.strategy == "none" or not trajs:
            return list(trajs)
        fields = [self._fields(traj, i) for i, traj in enumerate(trajs)]
        draws = self.draws(len(trajs), rng_seed)
        results = self._run(fields, draws)
        return [_traj.rebuild(t, r[4], self.goal_key, r) for t, r in zip(trajs, results)]

    __call__ = relabel

    def _fields(self, traj: dict, i: int) -> dict:
        f = _traj.step_fields(traj, i, self.goal_key, self.achieved_key)
        goals, T = f["goals"], f["T"]
        if goals.ndim != 3 or goals.shape[1] != self.num_goals or goals.shape[2] < 2:
            raise ValueError(
                f"trajs[{i}][{self.goal_key!r}] must have shape (T+1, num_goals={self.num_goals}, "
                f"goal_dim+1), got {goals.shape}"
            )
        d = goals.shape[2] - 1
        if f["achieved"].shape != (T + 1, d):
            raise ValueError(
                f"trajs[{i}][{self.achieved_key!r}] must hold goal_dim={d} values per row, "
                f"got shape {obs_shape(traj, self.achieved_key)}"
            )
        return f

    def _run(self, fields: list[dict], draws: np.ndarray) -> list[tuple]:
        code = MultiGoalStrategy(self.strategy).code
        dims = {f["goals"].shape[2] - 1 for f in fields}
        _traj.check_batch_shares(fields, dims)
        if self.backend == "python":
            return [
                reference.multigoal_reference(
                    f["goals"], f["achieved"], f["rl2s"], f["dones"], u, code, float(self.tolerance)
                )
                for f, u in zip(fields, draws)
            ]
        from amago_fast import _C

        return _C.relabel_multigoal(
            [f["goals"] for f in fields],
            [f["achieved"] for f in fields],
            [f["rl2s"] for f in fields],
            [f["dones"] for f in fields],
            draws,
            self.num_goals,
            dims.pop(),
            code,
            float(self.tolerance),
            self.num_threads or default_num_threads(),
        )


def obs_shape(traj: dict, key: str) -> tuple:
    """Shape of observation `key` of a trajectory (for error messages)."""
    return tuple(_traj.obs_container(traj)[key].shape)

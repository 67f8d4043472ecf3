"""Single-goal hindsight experience replay (HER, Andrychowicz et al. 2017), in C++.

For users coming from Stable-Baselines3 or TorchRL. Observations carry
  goals    (T+1, *g)  the desired goal at each step (constant within an episode)
  achieved (T+1, *g)  the goal-space value achieved at each step
Relabeling is per trajectory, so that a sequence model sees one goal throughout: with
probability `prob` a trajectory gets the new goal achieved[s] in every row, with
  "final":   s = T
  "future":  s ~ U{1..T} and the trajectory is cut at s, so every kept transition's goal
             lies in its own future (HER's "future" at the level of whole sequences)
  "episode": s ~ U{1..T}, no cut (the goal may lie in the past of late transitions)
and every reward is recomputed: success_reward when achieved[t+1] is within `tolerance`
of the goal in every coordinate, else failure_reward (SB3's convention is 0 / -1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import _traj, reference
from .multigoal import default_num_threads
from .protocol import HERStrategy


@dataclass
class HERRelabeler:
    """Single-goal HER over whole trajectories (see module doc); ``relabel(trajs, seed)``."""

    strategy: str = "future"
    """"final", "future" or "episode" (or a HERStrategy): which achieved value becomes the new goal."""
    goal_key: str = "desired_goal"
    """Observation key holding the desired goal, (T+1, *g)."""
    achieved_key: str = "achieved_goal"
    """Observation key holding the achieved goal, (T+1, *g)."""
    tolerance: float = 0.0
    """Success when every coordinate is within this distance (0 = exact)."""
    prob: float = 0.8
    """Probability that a trajectory is relabeled (SB3's her_ratio for n_sampled_goal=4)."""
    success_reward: float = 1.0
    """Reward of a transition that reaches the goal."""
    failure_reward: float = 0.0
    """Reward of every other transition."""
    terminate_on_success: bool = False
    """Cut the trajectory and set done at its first success (envs that end on success)."""
    backend: str = "cpp"
    """"cpp" (the kernel) or "python" (the pure-Python reference, for tests)."""
    num_threads: Optional[int] = None
    """C++ worker threads; None = min(cpu count, 8)."""

    def __post_init__(self) -> None:
        try:
            self.strategy = HERStrategy(self.strategy)
        except ValueError:
            raise ValueError(
                f"strategy must be one of {[s.value for s in HERStrategy]}, got {self.strategy!r}"
            ) from None
        if not isinstance(self.tolerance, (int, float)) or not math.isfinite(self.tolerance) or self.tolerance < 0:
            raise ValueError(f"tolerance must be a finite number >= 0, got {self.tolerance!r}")
        if not isinstance(self.prob, (int, float)) or not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {self.prob!r}")
        for name in ("success_reward", "failure_reward"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.backend not in ("cpp", "python"):
            raise ValueError(f"backend must be 'cpp' or 'python', got {self.backend!r}")
        if self.num_threads is not None and (not isinstance(self.num_threads, int) or self.num_threads < 1):
            raise ValueError(f"num_threads must be None or an int >= 1, got {self.num_threads!r}")

    def draws(self, batch_size: int, rng_seed: int) -> np.ndarray:
        """The uniforms both backends consume: (B, 2) float64 from numpy's PCG64 seeded
        with rng_seed. Column 0 decides relabel-or-not, column 1 picks the row s."""
        return np.random.default_rng(rng_seed).random((batch_size, 2))

    def relabel(self, trajs: list[dict], rng_seed: int) -> list[dict]:
        """Relabel a batch of trajectory dicts; returns new dicts (inputs untouched).

        A relabeled trajectory gets new goal_key, "rews", "dones" and "rl2s" arrays and
        views of its other fields cut to the new length; the others are returned as is.
        """
        trajs = _traj.check_batch(trajs, rng_seed)
        if not trajs:
            return []
        fields = [self._fields(traj, i) for i, traj in enumerate(trajs)]
        draws = self.draws(len(trajs), rng_seed)
        results = self._run(fields, draws)
        return [traj if r is None else _traj.rebuild(traj, r[4], self.goal_key, r) for traj, r in zip(trajs, results)]

    __call__ = relabel

    def _fields(self, traj: dict, i: int) -> dict:
        f = _traj.step_fields(traj, i, self.goal_key, self.achieved_key)
        T = f["T"]
        f["goals"] = f["goals"].reshape(T + 1, -1)  # (T+1, d)
        if f["goals"].shape != f["achieved"].shape or f["goals"].shape[1] < 1:
            raise ValueError(
                f"trajs[{i}]: goal_key {self.goal_key!r} and achieved_key {self.achieved_key!r} "
                f"must hold the same number (>= 1) of values per row, got "
                f"{f['goals'].shape[1]} and {f['achieved'].shape[1]}"
            )
        return f

    def _run(self, fields: list[dict], draws: np.ndarray) -> list:
        code = HERStrategy(self.strategy).code
        dims = {f["goals"].shape[1] for f in fields}
        _traj.check_batch_shares(fields, dims)
        args = (
            code,
            float(self.prob),
            float(self.tolerance),
            float(self.success_reward),
            float(self.failure_reward),
            bool(self.terminate_on_success),
        )
        if self.backend == "python":
            return [
                reference.her_reference(f["goals"], f["achieved"], f["rl2s"], f["dones"], u, *args)
                for f, u in zip(fields, draws)
            ]
        from amago_fast import _C

        return _C.relabel_her(
            [f["goals"] for f in fields],
            [f["achieved"] for f in fields],
            [f["rl2s"] for f in fields],
            [f["dones"] for f in fields],
            draws,
            dims.pop(),
            *args,
            self.num_threads or default_num_threads(),
        )

"""Meta frozen lake: ``k_attempts`` tries at one unseen lake layout (AMAGO's first example).

Each trial draws a random ``size x size`` lake (start at the top-left, goal at the
bottom-right, holes elsewhere, always with a safe path). The agent sees only its own
position, so the layout must be learned from experience *within* the trial: reaching the
goal, falling into a hole or running out of steps ends an attempt and puts the agent back
at the start of the same lake. A policy that explores on its first attempt and then walks
the remembered path scores close to ``k_attempts``; a memoryless one cannot.

Observation (4 floats): ``[row / size, col / size, attempt started (0/1), attempt / k]``.
Actions: Discrete(5) = stay, down, up, right, left. Reward 1 on reaching the goal.
The gymnasium episode is the whole trial (``k_attempts`` attempts); ``info["success"]``
on its last step is whether the final attempt reached the goal, ``info["goals"]`` how
many attempts did.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

MOVES = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))  # action -> (drow, dcol)


def random_lake(size: int, hole_prob: float, rng: np.random.Generator) -> np.ndarray:
    """(size, size) bool holes with a safe path from (0, 0) to (size-1, size-1)."""
    while True:
        holes = rng.random((size, size)) < hole_prob
        holes[0, 0] = holes[-1, -1] = False
        if shortest_path(holes) is not None:
            return holes


def shortest_path(holes: np.ndarray) -> list[int] | None:
    """Actions of a shortest hole-free walk from the start to the goal (BFS), or None."""
    size = holes.shape[0]
    prev: dict[tuple[int, int], tuple[tuple[int, int], int]] = {}
    queue, seen = deque([(0, 0)]), {(0, 0)}
    while queue:
        cell = queue.popleft()
        if cell == (size - 1, size - 1):
            actions = []
            while cell != (0, 0):
                cell, a = prev[cell]
                actions.append(a)
            return actions[::-1]
        for a, (dr, dc) in enumerate(MOVES[1:], start=1):
            nxt = (cell[0] + dr, cell[1] + dc)
            if 0 <= nxt[0] < size and 0 <= nxt[1] < size and not holes[nxt] and nxt not in seen:
                seen.add(nxt)
                prev[nxt] = (cell, a)
                queue.append(nxt)
    return None


class MetaFrozenLake(gym.Env):
    """``k_attempts`` attempts at one random lake per trial (see module docstring).

    Args:
        size: lake side (>= 2).
        k_attempts: attempts per trial (>= 1).
        hole_prob: chance that a cell (not start or goal) is a hole, in [0, 0.8].
        attempt_steps: step limit of one attempt; None = 2 * size * size.
    """

    metadata = {"render_modes": []}

    def __init__(self, size: int = 5, k_attempts: int = 10, hole_prob: float = 0.2, attempt_steps: int | None = None):
        for arg, value, low in (("size", size, 2), ("k_attempts", k_attempts, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{arg} must be an int >= {low}, got {value!r}")
        if not 0.0 <= float(hole_prob) <= 0.8:
            raise ValueError(f"hole_prob must be in [0, 0.8], got {hole_prob!r}")
        if attempt_steps is not None and (
            isinstance(attempt_steps, bool) or not isinstance(attempt_steps, (int, np.integer)) or attempt_steps < 1
        ):
            raise ValueError(f"attempt_steps must be an int >= 1 or None, got {attempt_steps!r}")
        self.size, self.k_attempts, self.hole_prob = int(size), int(k_attempts), float(hole_prob)
        self.attempt_steps = int(attempt_steps) if attempt_steps else 2 * self.size**2
        self.max_episode_steps = self.k_attempts * self.attempt_steps
        self.observation_space = spaces.Box(0.0, 1.0, (4,), np.float32)
        self.action_space = spaces.Discrete(len(MOVES))
        self.holes = np.zeros((self.size, self.size), bool)
        self._pos = (0, 0)
        self._attempt = self._attempt_t = self._goals = 0
        self._reached = False

    def _obs(self, attempt_start: bool) -> np.ndarray:
        r, c = self._pos
        return np.array(
            [r / self.size, c / self.size, float(attempt_start), self._attempt / self.k_attempts], np.float32
        )

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.holes = random_lake(self.size, self.hole_prob, self.np_random)
        self._pos, self._attempt, self._attempt_t, self._goals = (0, 0), 0, 0, 0
        self._reached = False
        return self._obs(True), {}

    def step(self, action: Any):
        dr, dc = MOVES[int(action)]
        r = min(max(self._pos[0] + dr, 0), self.size - 1)
        c = min(max(self._pos[1] + dc, 0), self.size - 1)
        self._pos = (r, c)
        self._attempt_t += 1
        goal = self._pos == (self.size - 1, self.size - 1)
        attempt_over = goal or bool(self.holes[r, c]) or self._attempt_t >= self.attempt_steps
        reward = 1.0 if goal else 0.0
        info: dict[str, Any] = {}
        if attempt_over:
            self._goals += int(goal)
            self._reached = goal
            self._attempt += 1
            self._pos, self._attempt_t = (0, 0), 0
        terminated = self._attempt >= self.k_attempts
        if terminated:
            info = {"success": bool(self._reached), "goals": self._goals}
        return self._obs(attempt_over), reward, terminated, False, info

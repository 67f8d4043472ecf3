"""MazeRunner: reach k goal cells of a random maze in order, without seeing where you are.

A goal-conditioned memory task after AMAGO's MazeRunner (Grigsby et al., 2024). Every
reset draws a new ``size`` x ``size`` maze (``size`` odd: rooms at odd coordinates, a
depth-first-search spanning tree plus a few extra openings, ``loops``) and ``goals``
distinct goal cells. The agent starts in the bottom-left room; it observes only local
features and the instruction, never its own position, so it must integrate its moves
from the known start (in-context) to know where it is.

Observation (a dict):
  "obs"      (6,) float32: free cells west, north, east, south of the agent (/ size),
             whether the last move hit a wall, and t / horizon;
  "goals"    (goals, 3) float32: goal cells (row, col) / (size - 1) and a reached flag
             (0/1); the active goal is the first one not reached - the layout
             ``MultiGoalRelabeler`` expects;
  "achieved" (2,) float32: the agent's cell (row, col) / (size - 1). It exists for
             hindsight relabeling only; the policy must not see it, and the env says so
             with ``hidden_obs_keys = ("achieved",)``: agents drop those keys from their
             inputs (the replay buffer keeps them for the relabeler).
Actions: Discrete(4) = north, south, west, east (moves into walls keep the agent still).
Reward 1 when the agent stands on the active goal after a move; the episode terminates
once all goals are reached, and is truncated after ``horizon`` steps.
``info["success"]``: all goals reached (on the final step). Positions are compared
exactly (tolerance 0): the same cell gives bit-identical float32 coordinates.
"""

from __future__ import annotations

from typing import Any, Optional

import gymnasium as gym
import numpy as np
from gymnasium import spaces

_MOVES = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)])  # north, south, west, east


def generate_maze(size: int, rng: np.random.Generator, loops: float = 0.1) -> np.ndarray:
    """(size, size) bool array, True = wall. Rooms sit at odd (row, col); a randomized
    depth-first search connects them all, then each remaining inner wall between two
    rooms opens with probability `loops` (cycles make shortest paths shorter)."""
    walls = np.ones((size, size), dtype=bool)
    start = (size - 2, 1)
    walls[start] = False
    stack = [start]
    while stack:
        r, c = stack[-1]
        options = [
            (r + 2 * dr, c + 2 * dc)
            for dr, dc in _MOVES
            if 0 < r + 2 * dr < size - 1 and 0 < c + 2 * dc < size - 1 and walls[r + 2 * dr, c + 2 * dc]
        ]
        if not options:
            stack.pop()
            continue
        nr, nc = options[rng.integers(len(options))]
        walls[(r + nr) // 2, (c + nc) // 2] = False  # the wall between the two rooms
        walls[nr, nc] = False
        stack.append((nr, nc))
    for r in range(1, size - 1):
        for c in range(1, size - 1):
            between_rooms = (r % 2) != (c % 2)  # one odd, one even coordinate
            if between_rooms and walls[r, c] and rng.random() < loops:
                walls[r, c] = False
    return walls


class MazeRunner(gym.Env):
    """k goals in order in a random maze, position hidden (see module docstring)."""

    metadata = {"render_modes": ["ansi"]}
    hidden_obs_keys = ("achieved",)  # relabeling-only keys the policy must not see

    def __init__(
        self,
        size: int = 9,
        goals: int = 2,
        horizon: Optional[int] = None,
        loops: float = 0.1,
        render_mode: Optional[str] = None,
    ):
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 5 or size % 2 == 0:
            raise ValueError(f"size must be an odd int >= 5, got {size!r}")
        if isinstance(goals, bool) or not isinstance(goals, (int, np.integer)) or goals < 1:
            raise ValueError(f"goals must be an int >= 1, got {goals!r}")
        rooms = ((size - 1) // 2) ** 2
        if goals > rooms - 1:
            raise ValueError(f"goals must be at most {rooms - 1} for size={size}, got {goals}")
        if horizon is None:
            horizon = 6 * size * goals
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise ValueError(f"horizon must be an int >= 1, got {horizon!r}")
        if not isinstance(loops, (int, float)) or not 0.0 <= loops <= 1.0:
            raise ValueError(f"loops must be in [0, 1], got {loops!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.size, self.num_goals, self.horizon = int(size), int(goals), int(horizon)
        self.loops, self.render_mode = float(loops), render_mode
        self.max_episode_steps = self.horizon
        self.observation_space = spaces.Dict(
            {
                "obs": spaces.Box(0.0, 1.0, (6,), np.float32),
                "goals": spaces.Box(0.0, 1.0, (self.num_goals, 3), np.float32),
                "achieved": spaces.Box(0.0, 1.0, (2,), np.float32),
            }
        )
        self.action_space = spaces.Discrete(4)
        self.walls = np.ones((self.size, self.size), dtype=bool)
        self.start = (self.size - 2, 1)
        self.goal_cells = np.zeros((self.num_goals, 2), dtype=np.int64)
        self._pos = np.array(self.start)
        self._reached = self._t = 0
        self._bumped = False

    def _cell(self, rc) -> np.ndarray:
        return np.asarray(rc, dtype=np.float32) / np.float32(self.size - 1)  # (2,)

    def _free(self, dr: int, dc: int) -> int:
        r, c, n = self._pos[0] + dr, self._pos[1] + dc, 0
        while not self.walls[r, c]:  # borders are walls, so this stops
            r, c, n = r + dr, c + dc, n + 1
        return n

    def _obs(self) -> dict[str, np.ndarray]:
        free = [self._free(0, -1), self._free(-1, 0), self._free(0, 1), self._free(1, 0)]
        obs = np.array([*(f / self.size for f in free), float(self._bumped), self._t / self.horizon], dtype=np.float32)
        goals = np.zeros((self.num_goals, 3), dtype=np.float32)
        goals[:, :2] = self._cell(self.goal_cells)
        goals[: self._reached, 2] = 1.0
        return {"obs": obs, "goals": goals, "achieved": self._cell(self._pos)}

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        self.walls = generate_maze(self.size, self.np_random, self.loops)
        rooms = [(r, c) for r in range(1, self.size - 1, 2) for c in range(1, self.size - 1, 2) if (r, c) != self.start]
        picks = self.np_random.choice(len(rooms), size=self.num_goals, replace=False)
        self.goal_cells = np.array([rooms[i] for i in picks], dtype=np.int64)
        self._pos = np.array(self.start)
        self._reached, self._t, self._bumped = 0, 0, False
        return self._obs(), {}

    def step(self, action: Any):
        if not self.action_space.contains(action):
            raise ValueError(f"action must be in Discrete(4), got {action!r}")
        target = self._pos + _MOVES[int(action)]
        self._bumped = bool(self.walls[target[0], target[1]])
        if not self._bumped:
            self._pos = target
        self._t += 1
        reward = 0.0
        if self._reached < self.num_goals and (self._pos == self.goal_cells[self._reached]).all():
            reward, self._reached = 1.0, self._reached + 1
        terminated = self._reached == self.num_goals
        truncated = not terminated and self._t >= self.horizon
        info = {"success": terminated} if terminated or truncated else {}
        return self._obs(), reward, terminated, truncated, info

    def render(self) -> Optional[str]:
        if self.render_mode != "ansi":
            return None
        chars = np.where(self.walls, "#", ".").astype("<U1")
        for i, (r, c) in enumerate(self.goal_cells[self._reached :], start=self._reached):
            chars[r, c] = str(i % 10)
        chars[self._pos[0], self._pos[1]] = "@"
        return "\n".join("".join(row) for row in chars)

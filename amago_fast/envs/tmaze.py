"""Passive T-Maze: a pure memory test (Ni et al. 2023, "When do Transformers Shine in RL?";
the passive T-Maze AMAGO benchmarks, stored as ``TMazePassive-H<horizon>``).

The agent starts at x=0 of a corridor of length ``horizon``; only there, at t=0, does the
observation reveal the goal side (up = +1 or down = -1). It must walk right to the
junction at x=horizon and turn towards the goal side on the final step. An episode lasts
exactly ``horizon + 1`` steps, so the only optimal policy walks right every step and
remembers the first observation for ``horizon`` steps.

Observation (2 floats, AMAGO's layout, key "observation"):
``[0, goal_y]`` at t=0, ``[0, 0]`` in the corridor, ``[1, y]`` at the junction
(y = the agent's current vertical offset: 0 before turning, +-1 after).
Actions: Discrete(4) = right, up, left, down (moves into walls are no-ops).
Reward on the final step: ``goal_reward`` (1) if the agent stands on the goal side, else 0.
Before that: ``penalty`` on every step that does not move the agent right, 0 otherwise
(this is what AMAGO's stored T-Maze trajectories show).
The default penalty is AMAGO's ``-1 / horizon``: without it a random policy never reaches
the junction within the time limit and the task cannot be learned; ``penalty=0`` gives the
sparse variant. ``info["success"]`` (final step) is True iff the agent turned correctly.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

_MOVES = ((1, 0), (0, 1), (-1, 0), (0, -1))  # action -> (dx, dy): right, up, left, down


class TMaze(gym.Env):
    """Passive T-Maze with a corridor of ``horizon`` cells (see module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, horizon: int = 20, penalty: float | None = None, goal_reward: float = 1.0):
        if not isinstance(horizon, (int, np.integer)) or isinstance(horizon, bool) or horizon < 1:
            raise ValueError(f"horizon must be an int >= 1, got {horizon!r}")
        self.horizon = int(horizon)
        self.penalty = -1.0 / self.horizon if penalty is None else float(penalty)
        self.goal_reward = float(goal_reward)
        self.max_episode_steps = self.horizon + 1  # right x horizon, then one turn
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Discrete(4)
        self._x = self._y = self._t = 0
        self._goal_y = 1

    def _obs(self) -> np.ndarray:
        if self._x == 0:
            exposure = self._goal_y if self._t == 0 else 0  # goal shown only at t=0
            return np.array([0.0, exposure], np.float32)
        if self._x < self.horizon:
            return np.zeros(2, np.float32)
        return np.array([1.0, self._y], np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        goal = (options or {}).get("goal")  # force the goal side (tests, demos)
        if goal is not None and goal not in (1, -1):
            raise ValueError(f"options['goal'] must be 1 or -1, got {goal!r}")
        self._goal_y = goal if goal is not None else (1 if self.np_random.random() < 0.5 else -1)
        self._x = self._y = self._t = 0
        return self._obs(), {"goal": self._goal_y}

    def step(self, action: Any):
        dx, dy = _MOVES[int(action)]
        x, y = self._x + dx, self._y + dy
        in_corridor = 0 <= x <= self.horizon and y == 0
        at_junction_arm = x == self.horizon and abs(y) <= 1
        moved_right = dx == 1 and (in_corridor or at_junction_arm)
        if in_corridor or at_junction_arm:
            self._x, self._y = x, y
        self._t += 1
        terminated = self._t >= self.max_episode_steps
        info: dict[str, Any] = {}  # kept empty mid-episode: vector envs batch every key
        if terminated:
            success = self._x == self.horizon and self._y == self._goal_y
            reward = self.goal_reward if success else 0.0
            info["success"] = bool(success)
            info["goal"] = self._goal_y
        else:
            reward = 0.0 if moved_right else self.penalty
        return self._obs(), float(reward), terminated, False, info

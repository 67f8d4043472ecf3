"""Dark Key-to-Door: a meta-RL gridworld (Algorithm Distillation, Laskin et al. 2022; AMAGO).

A task is a ``size`` x ``size`` room with a key and a door at fixed cells, drawn at reset.
The room is dark: the agent observes only its own position (and, with ``show_key``,
whether it holds the key). Reward 1 the first time it steps on the key in an inner
episode, then 1 when it reaches the door holding the key, which ends the inner episode.
Inner episodes also end after ``episode_length`` steps; the agent then restarts (at a
random cell if ``random_start``, else the room's centre) in the *same* room. One gymnasium
episode (a trial) lasts ``horizon`` steps in total, so an in-context learner explores in
its first inner episodes and walks straight to key and door afterwards.

Observation: ``[x, y] / (size - 1)`` (plus ``has_key`` with ``show_key``), float32.
Actions: Discrete(5) = stay, up, down, left, right (moves into walls are no-ops).
``info["success"]`` (final step): the door was opened within the trial's last
``episode_length`` steps, i.e. the agent still solves the task at the end of the trial.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

_MOVES = np.array([(0, 0), (0, 1), (0, -1), (-1, 0), (1, 0)])  # stay, up, down, left, right


def _int_arg(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


class DarkKeyDoor(gym.Env):
    """Dark key-to-door room, several inner episodes per trial (see module docstring)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        size: int = 9,
        episode_length: int = 50,
        horizon: int = 500,
        random_start: bool = True,
        show_key: bool = False,
    ):
        self.size = _int_arg("size", size, 3)
        self.episode_length = _int_arg("episode_length", episode_length, 1)
        self.horizon = _int_arg("horizon", horizon, 1)
        self.random_start = bool(random_start)
        self.show_key = bool(show_key)
        self.max_episode_steps = self.horizon
        self.observation_space = spaces.Box(0.0, 1.0, (3 if show_key else 2,), np.float32)
        self.action_space = spaces.Discrete(5)
        self._key = self._door = self._pos = np.zeros(2, np.int64)
        self._has_key = False
        self._t = self._inner_t = self._inner_episodes = self._doors = 0
        self._last_door_t = -1

    def _obs(self) -> np.ndarray:
        pos = self._pos / (self.size - 1)
        extra = [float(self._has_key)] if self.show_key else []
        return np.array([*pos, *extra], np.float32)

    def _start_inner_episode(self) -> None:
        if self.random_start:
            while True:  # never start on the key or the door
                pos = self.np_random.integers(0, self.size, 2)
                if not (np.array_equal(pos, self._key) or np.array_equal(pos, self._door)):
                    break
        else:
            pos = np.array([self.size // 2, self.size // 2])
        self._pos = pos
        self._has_key = False
        self._inner_t = 0

    def _info(self) -> dict:
        return {
            "key": self._key.copy(),
            "door": self._door.copy(),
            "inner_episodes": self._inner_episodes,
            "doors_opened": self._doors,
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        cells = self.np_random.choice(self.size * self.size, 3, replace=False)
        self._key = np.array(divmod(int(cells[0]), self.size))
        self._door = np.array(divmod(int(cells[1]), self.size))
        if not self.random_start and any(np.array_equal(c, [self.size // 2] * 2) for c in (self._key, self._door)):
            # keep the fixed start cell free: move the clashing object to the third cell
            third = np.array(divmod(int(cells[2]), self.size))
            if np.array_equal(self._key, [self.size // 2] * 2):
                self._key = third
            else:
                self._door = third
        self._t = self._inner_episodes = self._doors = 0
        self._last_door_t = -1
        self._start_inner_episode()
        return self._obs(), self._info()

    def step(self, action: Any):
        self._pos = np.clip(self._pos + _MOVES[int(action)], 0, self.size - 1)
        self._t += 1
        self._inner_t += 1
        reward = 0.0
        inner_done = False
        if not self._has_key and np.array_equal(self._pos, self._key):
            self._has_key = True
            reward = 1.0
        elif self._has_key and np.array_equal(self._pos, self._door):
            reward = 1.0
            inner_done = True
            self._doors += 1
            self._last_door_t = self._t
        terminated = self._t >= self.horizon
        if not terminated and (inner_done or self._inner_t >= self.episode_length):
            self._inner_episodes += 1
            self._start_inner_episode()
        info = self._info()
        if terminated:
            info["success"] = self._last_door_t > self.horizon - self.episode_length
        return self._obs(), reward, terminated, False, info

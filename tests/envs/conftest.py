"""Tiny deterministic envs whose time-step sequences can be written out by hand."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces


class CounterEnv(gym.Env):
    """obs = [episode count, t]; reward = 10 * t_after + action-derived term; ends after
    ``length`` steps (terminated, or truncated when ``truncate``)."""

    def __init__(self, length: int = 3, truncate: bool = False, action_space=None):
        self.length = length
        self.truncate = truncate
        self.observation_space = spaces.Box(-1e6, 1e6, (2,), np.float32)
        self.action_space = action_space if action_space is not None else spaces.Discrete(3)
        self.episodes = -1
        self.t = 0
        self.last_action = None

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episodes += 1
        self.t = 0
        return np.array([self.episodes, 0], np.float32), {"reset_info": self.episodes}

    def step(self, action):
        self.last_action = np.array(action)
        self.t += 1
        a = float(np.sum(action))
        rew = 10.0 * self.t + a
        end = self.t >= self.length
        info = {"t": self.t}
        if end:
            info["success"] = self.episodes % 2 == 0
        obs = np.array([self.episodes, self.t], np.float32)
        return obs, rew, end and not self.truncate, end and self.truncate, info


@pytest.fixture
def counter_env():
    return CounterEnv

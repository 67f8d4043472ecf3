"""One env that is a different task each episode: ``TaskSwitcher`` (multi-domain POPGym,
multi-task BabyAI, multi-game Atari, Meta-World ML10/ML45 build on it).

Every ``reset`` draws one of the task envs uniformly with the env's own ``np_random``.
When all tasks share an observation and action space (BabyAI levels, Atari games with the
full action set) they pass through unchanged. Otherwise every observation is flattened
to float32 and zero-padded to the widest task, and every task must have Discrete actions:
the switcher exposes ``Discrete(max n)`` and maps an action ``a`` to ``a % n`` for a task
with ``n`` actions (so every action the agent can take is valid in every task).
``info["task"]`` names the current task on every step.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class TaskSwitcher(gym.Env):
    """A uniformly drawn task per episode (see module docstring).

    Args:
        factories: one callable per task returning its gymnasium env.
        names: one name per task (``info["task"]``).
    """

    metadata = {"render_modes": []}

    def __init__(self, factories: Sequence[Callable[[], gym.Env]], names: Sequence[str]):
        if len(factories) < 1 or len(factories) != len(names):
            raise ValueError(
                f"factories and names must be non-empty and of equal length, got {len(factories)} and {len(names)}"
            )
        self.envs = [f() for f in factories]
        self.names = list(names)
        first = self.envs[0]
        self.same_spaces = all(
            e.observation_space == first.observation_space and e.action_space == first.action_space for e in self.envs
        )
        if self.same_spaces:
            self.observation_space = first.observation_space
            self.action_space = first.action_space
        else:
            bad = [n for n, e in zip(self.names, self.envs) if not isinstance(e.action_space, spaces.Discrete)]
            if bad:
                raise TypeError(f"tasks with different spaces need Discrete actions; {bad} have other action spaces")
            width = max(spaces.flatdim(e.observation_space) for e in self.envs)
            self.observation_space = spaces.Box(-np.inf, np.inf, (width,), np.float32)
            self.action_space = spaces.Discrete(max(int(e.action_space.n) for e in self.envs))
        limits = [_limit(e) for e in self.envs]
        self.max_episode_steps = None if None in limits else max(limits)
        self.task = 0

    def _obs(self, obs: Any) -> Any:
        if self.same_spaces:
            return obs
        flat = spaces.flatten(self.envs[self.task].observation_space, obs).astype(np.float32)
        out = np.zeros(self.observation_space.shape, np.float32)
        out[: flat.shape[0]] = flat
        return out

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        task = (options or {}).get("task")
        if task is not None and task not in self.names:
            raise ValueError(f"options['task'] must be one of {self.names}, got {task!r}")
        self.task = self.names.index(task) if task is not None else int(self.np_random.integers(len(self.envs)))
        obs, info = self.envs[self.task].reset(seed=int(self.np_random.integers(2**31)))
        return self._obs(obs), {**info, "task": self.names[self.task]}

    def step(self, action: Any):
        env = self.envs[self.task]
        if not self.same_spaces:
            action = int(action) % int(env.action_space.n) + int(env.action_space.start)
        obs, reward, terminated, truncated, info = env.step(action)
        return self._obs(obs), reward, terminated, truncated, {**info, "task": self.names[self.task]}

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _limit(env: gym.Env) -> int | None:
    from .registry import episode_limit

    return episode_limit(env)

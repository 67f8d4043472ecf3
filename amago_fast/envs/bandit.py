"""Meta-RL Bernoulli bandit (the RL^2 / AMAGO benchmark) and its Thompson-sampling score.

One gymnasium episode is one task: ``arms`` arm means are drawn from U[0, 1] at reset and
the agent gets ``pulls`` pulls. The observation is a constant zero (the agent learns only
from the previous reward and action it receives through ``rl2s``), so a good policy must
explore and exploit within its context. ``info["arm_means"]`` exposes the task.

Reference scores for 5 arms x 100 pulls (mean return over fresh tasks): Thompson
sampling about 75 (``thompson_sampling_return`` computes it), the Bayes-optimal Gittins
index policy about 78 (quoted from Duan et al. 2016, "RL^2", Table 1; not computed here),
an oracle that knows the best arm 100 * E[max of 5 U(0,1)] = 83.3.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

GITTINS_RETURN_5X100 = 78.3  # quoted (RL^2, Duan et al. 2016, Table 1), not computed


def _check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


class BernoulliBandit(gym.Env):
    """``arms``-armed Bernoulli bandit, ``pulls`` steps per task (see module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, arms: int = 5, pulls: int = 100):
        self.arms = _check_positive_int("arms", arms, 2)
        self.pulls = _check_positive_int("pulls", pulls)
        self.max_episode_steps = self.pulls
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(self.arms)
        self._means = np.zeros(self.arms)
        self._t = 0

    def _info(self) -> dict:
        return {"arm_means": self._means.copy()}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        means = (options or {}).get("arm_means")  # fix the task (tests, demos)
        if means is not None:
            means = np.asarray(means, np.float64)
            if means.shape != (self.arms,) or np.any((means < 0) | (means > 1)):
                raise ValueError(f"options['arm_means'] must be {self.arms} values in [0, 1]")
            self._means = means.copy()
        else:
            self._means = self.np_random.uniform(0.0, 1.0, self.arms)
        self._t = 0
        return np.zeros(1, np.float32), self._info()

    def step(self, action: Any):
        reward = float(self.np_random.random() < self._means[int(action)])
        self._t += 1
        terminated = self._t >= self.pulls
        return np.zeros(1, np.float32), reward, terminated, False, self._info()


def thompson_sampling_returns(
    arms: int = 5, pulls: int = 100, episodes: int = 10_000, seed: int | None = 0
) -> np.ndarray:
    """Per-task returns (episodes,) of Beta(1, 1)-prior Thompson sampling on fresh tasks.

    All ``episodes`` tasks run at once: arm means (episodes, arms) ~ U[0, 1]; each pull
    samples theta ~ Beta(successes + 1, failures + 1) per arm and pulls argmax theta.
    """
    arms = _check_positive_int("arms", arms, 2)
    pulls = _check_positive_int("pulls", pulls)
    episodes = _check_positive_int("episodes", episodes)
    rng = np.random.default_rng(seed)
    means = rng.uniform(size=(episodes, arms))  # (E, K)
    alpha = np.ones((episodes, arms))  # (E, K) successes + 1
    beta = np.ones((episodes, arms))  # (E, K) failures + 1
    rows = np.arange(episodes)
    total = np.zeros(episodes)
    for _ in range(pulls):
        arm = rng.beta(alpha, beta).argmax(1)  # (E,)
        reward = rng.random(episodes) < means[rows, arm]  # (E,)
        alpha[rows, arm] += reward
        beta[rows, arm] += ~reward
        total += reward
    return total


def thompson_sampling_return(arms: int = 5, pulls: int = 100, episodes: int = 10_000, seed: int | None = 0) -> float:
    """Mean return of Thompson sampling over ``episodes`` fresh tasks (about 75 for 5 x 100)."""
    return float(thompson_sampling_returns(arms, pulls, episodes, seed).mean())

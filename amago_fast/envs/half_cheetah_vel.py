"""HalfCheetahVel: run at a hidden target velocity (the classic meta-RL locomotion task).

Each trial draws a target velocity uniformly from ``[min_velocity, max_velocity]`` and
keeps it for ``k_episodes`` episodes of ``episode_steps`` steps (the physics resets between
them, the target does not). The reward ``-|x_velocity - target| + reward_ctrl`` (VariBAD's
terms, half the usual control cost) is the only way to learn the target, so the agent must
infer it in context. Built on gymnasium's MuJoCo HalfCheetah (v5 on gymnasium 1.x, v4 on
0.29); needs ``pip install 'amago_fast[mujoco]'``.

Observation: the cheetah's 17 floats plus ``[episode started (0/1)]``; actions: Box(-1, 1, (6,)).
``info["target_velocity"]`` and, at the trial's end, ``info["mean_velocity_error"]``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def _make_cheetah(ctrl_cost_weight: float) -> gym.Env:
    ids = [i for i in ("HalfCheetah-v5", "HalfCheetah-v4") if i in gym.registry]
    try:
        return gym.make(ids[0], ctrl_cost_weight=ctrl_cost_weight, max_episode_steps=None).unwrapped
    except (gym.error.DependencyNotInstalled, ImportError, IndexError) as e:
        raise ValueError(f"env 'half-cheetah-vel' needs MuJoCo: pip install 'amago_fast[mujoco]' ({e})") from None


class HalfCheetahVel(gym.Env):
    """HalfCheetah with a per-trial hidden target velocity (see module docstring).

    Args:
        k_episodes: episodes per trial sharing one target (>= 1).
        episode_steps: steps per episode (>= 1; MuJoCo's usual 1000 is long for a CPU).
        min_velocity / max_velocity: the target's range (VariBAD / AMAGO use 0 .. 3).
        ctrl_cost_weight: control cost weight (0.05: half of HalfCheetah's).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        k_episodes: int = 2,
        episode_steps: int = 200,
        min_velocity: float = 0.0,
        max_velocity: float = 3.0,
        ctrl_cost_weight: float = 0.05,
    ):
        for arg, value in (("k_episodes", k_episodes), ("episode_steps", episode_steps)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{arg} must be an int >= 1, got {value!r}")
        if not (np.isfinite(min_velocity) and np.isfinite(max_velocity) and min_velocity <= max_velocity):
            raise ValueError(f"need finite min_velocity <= max_velocity, got {min_velocity!r}, {max_velocity!r}")
        self.k_episodes, self.episode_steps = int(k_episodes), int(episode_steps)
        self.min_velocity, self.max_velocity = float(min_velocity), float(max_velocity)
        self.max_episode_steps = self.k_episodes * self.episode_steps
        self._cheetah = _make_cheetah(float(ctrl_cost_weight))
        inner = self._cheetah.observation_space
        self.observation_space = spaces.Box(-np.inf, np.inf, (inner.shape[0] + 1,), np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, self._cheetah.action_space.shape, np.float32)
        self.target_velocity = 0.0
        self._t = 0
        self._errors: list[float] = []

    def _obs(self, cheetah_obs: np.ndarray, episode_start: bool) -> np.ndarray:
        return np.concatenate([cheetah_obs, [float(episode_start)]])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        target = (options or {}).get("target_velocity")
        self.target_velocity = (
            float(target) if target is not None else float(self.np_random.uniform(self.min_velocity, self.max_velocity))
        )
        cheetah_seed = int(self.np_random.integers(2**31))
        obs, _ = self._cheetah.reset(seed=cheetah_seed)
        self._t, self._errors = 0, []
        return self._obs(obs, True), {"target_velocity": self.target_velocity}

    def step(self, action: Any):
        obs, _, _, _, cheetah_info = self._cheetah.step(np.asarray(action, np.float32))
        error = abs(float(cheetah_info["x_velocity"]) - self.target_velocity)
        reward = -error + float(cheetah_info["reward_ctrl"])
        self._errors.append(error)
        self._t += 1
        terminated = self._t >= self.max_episode_steps
        episode_over = self._t % self.episode_steps == 0
        info: dict[str, Any] = {"target_velocity": self.target_velocity}
        if episode_over and not terminated:  # same target, fresh physics
            obs, _ = self._cheetah.reset(seed=int(self.np_random.integers(2**31)))
        if terminated:
            info["mean_velocity_error"] = float(np.mean(self._errors))
        return self._obs(obs, episode_over), reward, terminated, False, info

    def close(self) -> None:
        self._cheetah.close()

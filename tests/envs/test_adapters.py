"""gym:/popgym: adapters, Tuple observations and MultiDiscrete actions."""

from __future__ import annotations

import importlib.util
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from amago_fast.envs import AmagoVecEnv, available_envs, make_env

HAS_POPGYM = importlib.util.find_spec("popgym") is not None


class TupleMDEnv(gym.Env):
    """Tuple observation, MultiDiscrete([2, 3], start=[0, 1]) actions; records the action."""

    def __init__(self):
        self.observation_space = spaces.Tuple([spaces.Discrete(3), spaces.Box(-1, 1, (2,))])
        self.action_space = spaces.MultiDiscrete([2, 3], start=[0, 1])
        self.last_action = None

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return (1, np.array([0.5, -0.5], np.float32)), {}

    def step(self, action):
        self.last_action = np.array(action)
        return (2, np.zeros(2, np.float32)), 0.0, False, False, {}


def test_tuple_obs_is_flattened_and_multidiscrete_is_a_flat_discrete():
    inner = TupleMDEnv()
    env = AmagoVecEnv([lambda: inner])
    assert env.action_space == spaces.Discrete(6) and env.action_dim == 6
    assert env.observation_space["observation"].shape == (5,)
    obs, _, _ = env.reset()
    np.testing.assert_array_equal(obs["observation"], [[0, 1, 0, 0.5, -0.5]])
    env.step([5])  # row-major: 5 -> (1, 2) -> + start (0, 1) = (1, 3)
    np.testing.assert_array_equal(inner.last_action, [1, 3])
    env.step([1])  # 1 -> (0, 1) -> (0, 2)
    np.testing.assert_array_equal(inner.last_action, [0, 2])
    env.close()


def test_available_envs_lists_builtins_and_patterns():
    names = available_envs()
    for name in ("tmaze", "bandit", "dark-key-door", "gym:<id>", "popgym:<Name>"):
        assert name in names


def test_gym_env_kwargs_pass_through():
    env = make_env("gym:CartPole-v1", num_envs=2, seed=0, max_episode_steps=7)
    assert env.max_episode_steps == 7
    env.reset()
    for t in range(7):
        r = env.step([0, 1])
        if r.done.all():
            break
    assert r.done.all() and t <= 6
    env.close()


def test_popgym_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "popgym", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "popgym.envs", None)
    with pytest.raises(ValueError, match="pip install"):
        make_env("popgym:RepeatPreviousEasy")


@pytest.mark.skipif(not HAS_POPGYM, reason="popgym not installed (optional extra)")
def test_popgym_envs():
    env = make_env("popgym:RepeatPreviousEasy", num_envs=2, seed=0)
    assert env.max_episode_steps == 51 and env.action_dim == 4
    obs, _, _ = env.reset()
    assert obs["observation"].shape == (2, 4)
    for _ in range(51):
        r = env.step([0, 1])
    assert r.done.all()
    env.close()
    bs = make_env("popgym:BattleshipEasy", num_envs=1, seed=0)  # MultiDiscrete actions
    assert bs.action_space == spaces.Discrete(64)
    bs.reset()
    bs.step([63])
    bs.close()
    with pytest.raises(ValueError, match="not found.*RepeatPrevious"):
        make_env("popgym:NoSuchGame")

"""Environments in AMAGO's time-step format (see docs/envs.md).

``make_env(name, num_envs, seed, vectorization, **env_args)`` returns an ``AmagoVecEnv``;
built-ins (``tmaze``, ``bandit``, ``dark-key-door``, ``mazerunner``, ``meta-frozen-lake``,
``half-cheetah-vel``, ``popgym-multi``) are registered here, more with
``register_env(name, factory)``; ``gym:<id>``, ``popgym:<Name>``, ``babyai:<Level>``,
``metaworld:ML1-<task>|ML10|ML45`` and ``ale:<Game>`` resolve on demand (families.py).
"""

from __future__ import annotations

from .bandit import BernoulliBandit, thompson_sampling_return, thompson_sampling_returns
from .dark_key_door import DarkKeyDoor
from .exploration import EpsilonGreedy
from .families import register_families
from .half_cheetah_vel import HalfCheetahVel
from .mazerunner import MazeRunner
from .meta_frozen_lake import MetaFrozenLake
from .multitask import TaskSwitcher
from .registry import available_envs, episode_limit, make_env, register_env, register_prefix, resolve_env
from .spaces import OBS_KEY, ActionCodec, action_dim
from .tmaze import TMaze
from .wrapper import AmagoVecEnv, DictObservation, StepResult

register_env("tmaze", TMaze)
register_env("bandit", BernoulliBandit)
register_env("dark-key-door", DarkKeyDoor)
register_env("mazerunner", MazeRunner)
register_env("meta-frozen-lake", MetaFrozenLake)
register_env("half-cheetah-vel", HalfCheetahVel)
register_families(register_env, register_prefix)

__all__ = [
    "make_env",
    "register_env",
    "register_prefix",
    "MetaFrozenLake",
    "HalfCheetahVel",
    "TaskSwitcher",
    "available_envs",
    "resolve_env",
    "episode_limit",
    "AmagoVecEnv",
    "StepResult",
    "DictObservation",
    "ActionCodec",
    "action_dim",
    "OBS_KEY",
    "EpsilonGreedy",
    "TMaze",
    "BernoulliBandit",
    "DarkKeyDoor",
    "thompson_sampling_return",
    "thompson_sampling_returns",
]

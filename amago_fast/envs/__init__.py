"""Environments in AMAGO's time-step format (see docs/envs.md).

``make_env(name, num_envs, seed, vectorization, **env_args)`` returns an ``AmagoVecEnv``;
built-ins are registered here, more with ``register_env(name, factory)``.
"""
from __future__ import annotations

from .registry import available_envs, make_env, register_env, resolve_env
from .spaces import OBS_KEY, ActionCodec, action_dim
from .tmaze import TMaze
from .wrapper import AmagoVecEnv, DictObservation, StepResult

register_env("tmaze", TMaze)

__all__ = [
    "make_env", "register_env", "available_envs", "resolve_env",
    "AmagoVecEnv", "StepResult", "DictObservation", "ActionCodec", "action_dim", "OBS_KEY",
    "TMaze",
]

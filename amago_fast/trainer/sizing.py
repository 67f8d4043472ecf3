"""Fitting the agent's context length to the env before training."""

from __future__ import annotations

import dataclasses
from typing import Optional

from ..agent import AgentConfig
from .config import TrainerConfig


def sized_agent_config(agent_cfg: AgentConfig, cfg: TrainerConfig, max_episode_steps: Optional[int]) -> AgentConfig:
    """Fit the context to the env: a whole episode (T transitions -> T+1 tokens) when
    the env has a known, finite limit and context_from_env is on, at most context_cap
    tokens (longer episodes then train and act on sliding windows)."""
    if not cfg.context_from_env or not max_episode_steps:
        return agent_cfg
    tokens = int(max_episode_steps) + 1
    if cfg.context_cap:
        tokens = min(tokens, int(cfg.context_cap))
    return dataclasses.replace(agent_cfg, max_seq_len=tokens, max_time=max(agent_cfg.max_time, tokens))

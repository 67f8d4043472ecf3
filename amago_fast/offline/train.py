"""Gradient steps on a replay buffer with no environment (offline RL)."""

from __future__ import annotations

from typing import Callable, Optional


def train_offline(
    agent,
    buffer,
    steps: int,
    batch_size: int = 24,
    seq_len: Optional[int] = None,
    padded_sampling: str = "none",
    on_step: Optional[Callable[[int, dict], None]] = None,
) -> dict:
    """`steps` updates of `agent` on windows of `buffer`; seq_len defaults to the agent's
    context (max_seq_len - 1 transitions). on_step(i, metrics) after each update.
    Returns the last update's metrics."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if buffer.num_trajectories == 0:
        raise ValueError("buffer holds no trajectories")
    L = seq_len or max(1, agent.config.max_seq_len - 1)
    metrics: dict = {}
    for i in range(steps):
        metrics = agent.train_step(buffer.sample(batch_size, L, padded_sampling=padded_sampling))
        if on_step is not None:
            on_step(i, metrics)
    return metrics

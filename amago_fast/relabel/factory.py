"""Build a relabeler from a name and an env's observation space (for CLIs and trainers)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .multigoal import MultiGoalRelabeler

RELABEL_CHOICES = ("none", "some", "all")


def relabeler_for(
    strategy: str,
    observation_space: Any,
    goal_key: str = "goals",
    achieved_key: str = "achieved",
    tolerance: float = 0.0,
) -> Optional[MultiGoalRelabeler]:
    """The relabeler behind ``--relabel some|all|none`` for a multi-goal env.

    observation_space: a gymnasium Dict with goal_key (k, d+1) and achieved_key (d,) or
    (1, d) (e.g. MazeRunner's). Returns None for "none" (the buffer then samples on its
    plain fast path); otherwise a MultiGoalRelabeler with k read from the space.
    """
    if strategy not in RELABEL_CHOICES:
        raise ValueError(f"strategy must be one of {RELABEL_CHOICES}, got {strategy!r}")
    if strategy == "none":
        return None
    spaces = getattr(observation_space, "spaces", None)
    if not isinstance(spaces, dict) or goal_key not in spaces or achieved_key not in spaces:
        raise ValueError(
            f"observation_space must be a Dict with {goal_key!r} and {achieved_key!r} keys to "
            f"relabel goals, got {observation_space!r}"
        )
    goal_shape, achieved_shape = tuple(spaces[goal_key].shape), tuple(spaces[achieved_key].shape)
    if len(goal_shape) != 2 or goal_shape[1] < 2 or int(np.prod(achieved_shape)) != goal_shape[1] - 1:
        raise ValueError(
            f"observation_space[{goal_key!r}] must be (k, d+1) and [{achieved_key!r}] hold d "
            f"values, got {goal_shape} and {achieved_shape}"
        )
    return MultiGoalRelabeler(goal_shape[0], strategy, goal_key, achieved_key, tolerance)

"""Hindsight relabeling: multi-goal instructions (AMAGO) and single-goal HER, in C++.

``MultiGoalRelabeler`` and ``HERRelabeler`` take a list of trajectory dicts and a seed
and return relabeled copies; a ReplayBuffer calls ``relabel(trajs, rng_seed)`` on the
trajectories it samples, before cutting windows. Pure-Python references of both kernels
live in ``amago_fast.relabel.reference``.
"""

from __future__ import annotations

from .factory import RELABEL_CHOICES, relabeler_for
from .her import HERRelabeler
from .multigoal import MultiGoalRelabeler
from .protocol import HERStrategy, MultiGoalStrategy, Relabeler

__all__ = [
    "MultiGoalRelabeler",
    "HERRelabeler",
    "HERStrategy",
    "MultiGoalStrategy",
    "Relabeler",
    "relabeler_for",
    "RELABEL_CHOICES",
]

"""What a ReplayBuffer needs from a relabeler, and the HER strategies by name."""

from __future__ import annotations

from enum import Enum
from typing import Optional, Protocol, Sequence, runtime_checkable

from . import reference


@runtime_checkable
class Relabeler(Protocol):
    """relabel(trajs, rng_seed) -> relabeled copies, called by ReplayBuffer.sample on the
    trajectories it drew (each a dict of the data contract, docs/data.md), before windows
    are cut. `goal_key` / `achieved_key` (None when unused) name observation keys the
    buffer checks exist when the relabeler is attached."""

    goal_key: Optional[str]
    achieved_key: Optional[str]

    def relabel(self, trajs: Sequence[dict], rng_seed: int) -> list: ...


class HERStrategy(str, Enum):
    """Which achieved value becomes a trajectory's new goal (see relabel.her)."""

    FINAL = "final"
    FUTURE = "future"
    EPISODE = "episode"

    @property
    def code(self) -> int:
        """The integer the C++ kernel and the reference take."""
        return {
            HERStrategy.FINAL: reference.HER_FINAL,
            HERStrategy.FUTURE: reference.HER_FUTURE,
            HERStrategy.EPISODE: reference.HER_EPISODE,
        }[self]


class MultiGoalStrategy(str, Enum):
    """How many of a trajectory's goals AMAGO's multi-goal relabeling rewrites (see relabel.multigoal)."""

    NONE = "none"
    SOME = "some"
    ALL = "all"

    @property
    def code(self) -> int:
        return {
            MultiGoalStrategy.NONE: 0,
            MultiGoalStrategy.SOME: reference.STRATEGY_SOME,
            MultiGoalStrategy.ALL: reference.STRATEGY_ALL,
        }[self]

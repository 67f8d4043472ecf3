"""Remaining-time estimate for the progress bar that counts learning, not only collection.

tqdm's own ETA extrapolates env steps per second; before learning starts those are
collection-only steps and the ETA is many times too short. `Eta` keeps a moving average
of the measured cost of each kind of work (seconds per env step collected, per gradient
step, per evaluation) and adds up what is left of each.
"""

from __future__ import annotations

import math
from typing import Optional

BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}{postfix}]"


def format_seconds(s: Optional[float]) -> str:
    """'1:02:03' / '4:05', or '?' when unknown."""
    if s is None or not math.isfinite(s):
        return "?"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class Eta:
    """Eta(alpha).observe(kind, seconds, count); remaining(collect=, learn=, eval=) -> s or None."""

    KINDS = ("collect", "learn", "eval")

    def __init__(self, alpha: float = 0.3):
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.cost: dict[str, Optional[float]] = {k: None for k in self.KINDS}  # seconds per unit

    def observe(self, kind: str, seconds: float, count: int) -> None:
        """`count` units of `kind` took `seconds` (ignored when count is 0)."""
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        if count <= 0:
            return
        per = seconds / count
        old = self.cost[kind]
        self.cost[kind] = per if old is None else (1 - self.alpha) * old + self.alpha * per

    def remaining(self, **left: int) -> Optional[float]:
        """Seconds for the units left of each kind; None while a kind with work left is
        still unmeasured (e.g. gradient steps before the first update)."""
        total = 0.0
        for kind, n in left.items():
            if n <= 0:
                continue
            if self.cost[kind] is None:
                return None
            total += n * self.cost[kind]
        return total


def work_left(
    env_steps: int, total: int, steps_per_round: int, learning_starts: int, grad_steps_per_round: int, eval_every: int
) -> dict[str, int]:
    """Units of work before `total` env steps: {collect, learn, eval} (see Trainer.run)."""
    left = max(0, total - env_steps)
    learn_from = max(env_steps, learning_starts)
    learn_rounds = -(-max(0, total - learn_from) // steps_per_round)
    evals = (total // eval_every - env_steps // eval_every) if eval_every > 0 else 0
    evals += int(left > 0 and (eval_every <= 0 or total % eval_every != 0))  # the final one
    return {"collect": left, "learn": learn_rounds * grad_steps_per_round, "eval": evals}

"""What one training round reports: statistics of the episodes it finished (for the
metrics record) and the progress bar's postfix."""

from __future__ import annotations

from typing import Any

import numpy as np


def episode_stats(episodes: list[dict]) -> dict[str, float]:
    """train/return_mean over `episodes` (info dicts with "episode_return"), and
    train/success_rate over those that report "success"."""
    out = {"train/return_mean": float(np.mean([e["episode_return"] for e in episodes]))}
    succ = [e["success"] for e in episodes if "success" in e]
    if succ:
        out["train/success_rate"] = float(np.mean(succ))
    return out


def bar_postfix(grad_steps: int, last_eval: dict[str, Any], eta: str) -> dict[str, Any]:
    """Update count, the last evaluation's return (and success rate) and the ETA."""
    post: dict[str, Any] = {"grad": grad_steps}
    if last_eval:
        post["eval_ret"] = round(last_eval["return_mean"], 3)
        if "success_rate" in last_eval:
            post["eval_succ"] = round(last_eval["success_rate"], 3)
    post["eta"] = eta
    return post

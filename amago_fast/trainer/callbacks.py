"""Trainer hooks (SB3-style): subclass `Callback`, override what you need, pass a list.

    class Stop(Callback):
        def on_eval(self, trainer, result):
            if result.get("success_rate", 0.0) >= 0.95:
                trainer.stop()           # ends the run after this round (with a checkpoint)

    Trainer(run_dir, cfg, agent_cfg, callbacks=[Stop()]).run()

Every hook gets the Trainer first; its return value is ignored (use ``trainer.stop()``).
Hooks run in the training process, between rounds: a slow hook slows training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Callback:
    """No-op base: override any of the hooks."""

    def on_train_start(self, trainer) -> None:
        """Once, when ``run`` starts (after a resume, at the restored step)."""

    def on_step(self, trainer, record: dict[str, Any]) -> None:
        """After every round (collect + learn), with the record just logged to metrics.jsonl."""

    def on_eval(self, trainer, result: dict[str, Any]) -> None:
        """After every evaluation, with its result (return_mean, success_rate, ...)."""

    def on_checkpoint(self, trainer, path: Path) -> None:
        """After a checkpoint is committed to ``path``."""

    def on_train_end(self, trainer) -> None:
        """Once, when ``run`` returns or raises (interrupts included)."""


HOOKS = ("on_train_start", "on_step", "on_eval", "on_checkpoint", "on_train_end")


def check_callbacks(callbacks) -> list:
    """The callbacks as a list; TypeError naming one that has none of the hooks."""
    out = list(callbacks or [])
    for i, cb in enumerate(out):
        if not any(callable(getattr(cb, h, None)) for h in HOOKS):
            raise TypeError(f"callbacks[{i}]: {type(cb).__name__} has none of the hooks {HOOKS}")
    return out


def fire(callbacks: list, hook: str, trainer, *args: Any) -> None:
    """Call `hook` on every callback that defines it, in order."""
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if callable(fn):
            fn(trainer, *args)

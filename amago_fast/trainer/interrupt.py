"""Stopping a run from outside: SIGINT/SIGTERM ask the trainer to checkpoint and stop after
the current round; `TrainingInterrupted` then tells the caller where the checkpoint is."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Callable, Optional


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM stopped `Trainer.run` after saving a checkpoint. str() is the one line
    for users; the CLI prints it and exits with code 130."""

    def __init__(self, env_steps: int, checkpoint: Optional[Path], signal_name: str):
        self.env_steps, self.checkpoint, self.signal_name = env_steps, checkpoint, signal_name
        where = f"checkpoint saved to {checkpoint}" if checkpoint is not None else "no checkpoint (no env step yet)"
        super().__init__(f"interrupted at step {env_steps}; {where}")


def install_stop_handlers(stop: Callable[[str], None], stopping: Callable[[], bool]) -> dict:
    """SIGINT/SIGTERM -> stop(signal name); a second SIGINT while stopping() aborts at once
    (KeyboardInterrupt, no checkpoint). Main thread only. Returns the previous handlers."""

    def handler(signum, frame):
        name = signal.Signals(signum).name
        if stopping() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: abort without a checkpoint
        stop(name)
        print(
            f"\n{name}: saving a checkpoint after this round (Ctrl-C again to abort without one)",
            file=sys.stderr,
            flush=True,
        )

    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.signal(sig, handler)
    return old


def restore_handlers(old: dict) -> None:
    """Put back the handlers install_stop_handlers returned."""
    for sig, h in old.items():
        signal.signal(sig, h)

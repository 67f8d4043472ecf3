"""Replay: the C++ trajectory store and window sampler, with persistence and AMAGO import.

See docs/replay.md. Public: ReplayBuffer, Batch, StreamWriter, import_amago.
"""

from __future__ import annotations

from .amago_import import import_amago
from .batch import Batch
from .buffer import ReplayBuffer
from .stream import StreamWriter

__all__ = ["ReplayBuffer", "Batch", "StreamWriter", "import_amago"]

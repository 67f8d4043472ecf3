"""Training loop, evaluation and checkpoints: `Trainer`, `TrainerConfig`, `evaluate`."""

from .callbacks import Callback
from .checkpoint import (
    NonFiniteWeightsError,
    ResumeError,
    latest_checkpoint,
    load_checkpoint,
    load_weights,
    save_checkpoint,
)
from .config import TrainerConfig
from .evaluate import evaluate
from .loop import Trainer, TrainingInterrupted, sized_agent_config

__all__ = [
    "Callback",
    "NonFiniteWeightsError",
    "ResumeError",
    "Trainer",
    "TrainerConfig",
    "TrainingInterrupted",
    "evaluate",
    "latest_checkpoint",
    "load_checkpoint",
    "load_weights",
    "save_checkpoint",
    "sized_agent_config",
]

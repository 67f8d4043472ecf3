"""Training loop, evaluation and checkpoints: `Trainer`, `TrainerConfig`, `evaluate`."""
from .checkpoint import latest_checkpoint, load_checkpoint, load_weights, save_checkpoint
from .config import TrainerConfig
from .evaluate import evaluate
from .loop import Trainer, sized_agent_config

__all__ = ["Trainer", "TrainerConfig", "evaluate", "latest_checkpoint", "load_checkpoint", "load_weights",
           "save_checkpoint", "sized_agent_config"]

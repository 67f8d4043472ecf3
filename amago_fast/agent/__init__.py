"""The AMAGO agent: `Agent` (networks, update, acting), its `AgentConfig`, and the update
as a loss object (`AmagoLoss`, AMAGO-2's `MultiTaskLoss`) that owns the target heads and PopArt."""

from .config import AgentConfig
from .losses import AmagoLoss, amago_loss, masked_mean, nstep_targets
from .model import Agent, TorchBatch, action_kind
from .multitask import MultiTaskLoss

__all__ = [
    "Agent",
    "AgentConfig",
    "AmagoLoss",
    "MultiTaskLoss",
    "TorchBatch",
    "action_kind",
    "amago_loss",
    "masked_mean",
    "nstep_targets",
]

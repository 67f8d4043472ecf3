"""The AMAGO agent: `Agent` (networks, update, acting) and its `AgentConfig`."""
from .config import AgentConfig
from .losses import amago_loss, masked_mean, nstep_targets, td_targets
from .model import Agent, TorchBatch, action_kind

__all__ = ["Agent", "AgentConfig", "TorchBatch", "action_kind", "amago_loss", "masked_mean", "nstep_targets", "td_targets"]

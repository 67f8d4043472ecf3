"""Adapters that put amago_fast's kernels under other trainers.

Every name is imported lazily, and no adapter imports its peer package (amago, torchrl,
tensordict, stable-baselines3) until it is used, so ``import amago_fast.compat`` is cheap
and works without any of them installed:

- ``AmagoFlashAttention``: an attention type for AMAGO's Transformer
  (``amago.nets.transformer.SelfAttention`` interface) backed by amago_fast's attention ops;
- ``AmagoReplayDataset``: AMAGO's ``RLDataset`` interface backed by the C++ ReplayBuffer;
- ``copy_heads_to_amago`` / ``copy_heads_from_amago``: actor, critic and PopArt weights
  between amago_fast's ``Agent`` and AMAGO's (state columns in the trajectory encoder's
  channel order, see ``head_tensors``);
- ``copy_traj_encoder_to_amago``: the Transformer trajectory encoder into AMAGO's
  ``TformerTrajEncoder``;
- ``batch_to_tensordict``, ``tensordict_to_batch``, ``trajectory_to_tensordict``,
  ``SliceWindowSampler``: TorchRL interop.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AmagoFlashAttention": "amago_fast.compat.amago_attention",
    "make_amago_attention_class": "amago_fast.compat.amago_attention",
    "AmagoReplayDataset": "amago_fast.compat.amago_dataset",
    "batch_to_tensordict": "amago_fast.compat.torchrl",
    "tensordict_to_batch": "amago_fast.compat.torchrl",
    "trajectory_to_tensordict": "amago_fast.compat.torchrl",
    "SliceWindowSampler": "amago_fast.compat.torchrl",
    "copy_heads_to_amago": "amago_fast.compat.amago_weights",
    "copy_heads_from_amago": "amago_fast.compat.amago_weights",
    "head_tensors": "amago_fast.compat.amago_weights",
    "copy_traj_encoder_to_amago": "amago_fast.compat.amago_traj_weights",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'amago_fast.compat' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

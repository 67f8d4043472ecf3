"""amago_fast: AMAGO-style in-context RL with native kernels.

One public entry point per capability, imported lazily so that ``import amago_fast``
is instant and never needs a GPU:

- ``ReplayBuffer``, ``Batch``: the C++ replay store and window sampler;
- ``flash_attn_func``, ``flash_attn_qkvpacked_func``, ``flash_attn_with_kvcache``:
  attention with flash-attn's signatures (Triton on CUDA, PyTorch on CPU);
- ``MultiGoalRelabeler``, ``HERRelabeler``: hindsight relabeling in C++;
- ``Agent``, ``AgentConfig``, ``Trainer``, ``TrainerConfig``, ``make_env``, ``register_env``:
  the agent;
- ``load_policy`` -> ``Policy``: a trained run's policy with ``predict`` / ``reset``.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

# public name -> module that defines it
_EXPORTS = {
    "ReplayBuffer": "amago_fast.replay",
    "Batch": "amago_fast.replay",
    "import_amago": "amago_fast.replay",
    "flash_attn_func": "amago_fast.ops",
    "flash_attn_qkvpacked_func": "amago_fast.ops",
    "flash_attn_with_kvcache": "amago_fast.ops",
    "MultiGoalRelabeler": "amago_fast.relabel",
    "HERRelabeler": "amago_fast.relabel",
    "Agent": "amago_fast.agent",
    "AgentConfig": "amago_fast.agent",
    "Trainer": "amago_fast.trainer",
    "TrainerConfig": "amago_fast.trainer",
    "CPU_AGENT": "amago_fast.trainer.presets",
    "make_env": "amago_fast.envs",
    "register_env": "amago_fast.envs",
    "load_policy": "amago_fast.policy",
    "Policy": "amago_fast.policy",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'amago_fast' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

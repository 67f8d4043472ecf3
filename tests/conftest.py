"""Suite-wide test setup.

Triton reads TRITON_INTERPRET once, when a kernel is first defined, so the choice is made
here, before any test module (or a peer package such as tensordict) can import triton:
without a CUDA device the kernels run on CPU through the interpreter; with one they are
compiled for real, the GPU tests run and the interpreter tests skip. Set
TRITON_INTERPRET yourself to override.

Tests marked `gpu` are collected everywhere (the default `pytest` runs them on a machine
with CUDA) and skipped, with the reason, where there is none.
"""

from __future__ import annotations

import os

import torch

if "TRITON_INTERPRET" not in os.environ and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

# Subprocesses the tests start (python -c ..., python -m ..., scripts) must import the
# INSTALLED amago_fast, like a user's would: without this, `python -c` run from the
# repository root puts the source tree (which has no compiled _C) first on sys.path.
# Python >= 3.11 honours it; scripts that import siblings add their folder themselves.
os.environ.setdefault("PYTHONSAFEPATH", "1")


def pytest_collection_modifyitems(config, items):
    import pytest

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (runs by default where there is one)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)

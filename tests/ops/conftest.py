"""Shared helpers for the attention tests (pytest cannot import sibling test modules)."""

from __future__ import annotations

# TRITON_INTERPRET is decided once for the whole suite in tests/conftest.py.
import pytest
import torch


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


def check_flash_rule(name: str, tri: torch.Tensor, ref: torch.Tensor, ref_lp: torch.Tensor, atol: float) -> None:
    """flash-attn's precision rule: |tri - ref| <= 2 |ref_lowprec - ref| + atol (elementwise max)."""
    err, base = max_err(tri, ref), max_err(ref_lp, ref)
    assert err <= 2 * base + atol, f"{name}: kernel err {err:.3g} > 2 * ref_lowprec err {base:.3g} + {atol}"


@pytest.fixture
def seeded():
    torch.manual_seed(0)
    yield


@pytest.fixture
def flash_rule():
    """The precision-rule checker, as a fixture (importlib mode cannot import conftest)."""
    return check_flash_rule

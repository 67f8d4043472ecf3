"""Shared helpers for the compat tests: plain-PyTorch attention references and AMAGO fakes."""
from __future__ import annotations

import math
import sys
import types

import pytest
import torch
from torch import nn


def ref_causal_attention(qkv: torch.Tensor, causal: bool = True) -> torch.Tensor:
    """qkv (B, L, 3, H, D) -> (B, L, H, D), computed in float64 with an explicit mask."""
    q, k, v = qkv.double().unbind(2)
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = torch.einsum("blhd,bshd->bhls", q, k) * scale  # (B, H, L, L)
    if causal:
        L = q.shape[1]
        future = torch.ones(L, L, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
    return torch.einsum("bhls,bshd->blhd", scores.softmax(-1), v)


def ref_decode(q, k_cache, v_cache, seqlens) -> torch.Tensor:
    """One query per row over cache[:seqlen+1] (already holding the new key): (B, 1, H, D)."""
    out = []
    for b in range(q.shape[0]):
        n = int(seqlens[b]) + 1
        kb, vb = k_cache[b, :n].double(), v_cache[b, :n].double()  # (n, H, D)
        scores = torch.einsum("hd,nhd->hn", q[b, 0].double(), kb) / math.sqrt(q.shape[-1])
        out.append(torch.einsum("hn,nhd->hd", scores.softmax(-1), vb))
    return torch.stack(out)[:, None]


class FakeSelfAttention(nn.Module):
    """Stand-in for amago.nets.transformer.SelfAttention (same constructor and attributes)."""

    def __init__(self, causal: bool = True, dropout: float = 0.0):
        super().__init__()
        self.causal = causal
        self.dropout = dropout
        self.fake_base_init_called = True

    def forward(self, qkv, key_cache=None, val_cache=None, cache_seqlens=None):
        raise NotImplementedError


@pytest.fixture
def fake_amago(monkeypatch):
    """Install a minimal fake ``amago`` package (only nets.transformer.SelfAttention)."""
    amago = types.ModuleType("amago")
    nets = types.ModuleType("amago.nets")
    transformer = types.ModuleType("amago.nets.transformer")
    transformer.SelfAttention = FakeSelfAttention
    amago.__path__ = []  # a package, so find_spec("amago") succeeds
    nets.__path__ = []
    amago.nets = nets
    nets.transformer = transformer
    for name, mod in (("amago", amago), ("amago.nets", nets), ("amago.nets.transformer", transformer)):
        mod.__spec__ = importlib_spec(name)
        monkeypatch.setitem(sys.modules, name, mod)
    return transformer


def importlib_spec(name: str):
    import importlib.machinery

    return importlib.machinery.ModuleSpec(name, loader=None, is_package=True)


@pytest.fixture
def ref():
    """The references and fakes above, as a namespace (test modules cannot import conftest)."""
    return types.SimpleNamespace(
        causal=ref_causal_attention, decode=ref_decode, FakeSelfAttention=FakeSelfAttention
    )

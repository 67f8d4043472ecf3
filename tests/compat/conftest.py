"""Shared helpers for the compat tests: plain-PyTorch attention references and AMAGO fakes."""

from __future__ import annotations

import dataclasses
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


class FakeRLDataset(torch.utils.data.Dataset):
    """Stand-in for amago.loading.RLDataset (recent AMAGO: __init__(dset_name=None))."""

    def __init__(self, dset_name=None):
        self.dset_name = dset_name
        self.fake_base_init_called = True


@dataclasses.dataclass
class FakeRLData:
    """Stand-in for amago.loading.RLData."""

    obs: dict
    rl2s: torch.Tensor
    rews: torch.Tensor
    dones: torch.Tensor
    actions: torch.Tensor
    time_idxs: torch.Tensor

    def __len__(self):
        return len(self.actions)


@pytest.fixture
def fake_amago(monkeypatch):
    """Install a minimal fake ``amago`` package: nets.transformer.SelfAttention and
    loading.{RLDataset, RLData}. Returns the fake ``amago.nets.transformer`` module."""
    amago = types.ModuleType("amago")
    nets = types.ModuleType("amago.nets")
    transformer = types.ModuleType("amago.nets.transformer")
    transformer.SelfAttention = FakeSelfAttention
    amago.__path__ = []  # a package, so find_spec("amago") succeeds
    nets.__path__ = []
    loading = types.ModuleType("amago.loading")
    loading.RLDataset, loading.RLData = FakeRLDataset, FakeRLData
    amago.nets, amago.loading = nets, loading
    nets.transformer = transformer
    mods = (("amago", amago), ("amago.nets", nets), ("amago.nets.transformer", transformer), ("amago.loading", loading))
    for name, mod in mods:
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
        causal=ref_causal_attention,
        decode=ref_decode,
        FakeSelfAttention=FakeSelfAttention,
        FakeRLDataset=FakeRLDataset,
        FakeRLData=FakeRLData,
    )


def write_amago_npz(directory, T: int, A: int = 2, seed: int = 0, t: float = 0.0, env: str = "Fake-v0"):
    """Write one trajectory file the way AMAGO's actors do; return its arrays and path."""
    import os

    import numpy as np

    rng = np.random.default_rng(seed)
    act = np.eye(A, dtype=np.float32)[rng.integers(A, size=T)]  # (T, A) one-hot
    rews = rng.normal(size=(T, 1)).astype(np.float32)
    arrays = {
        "_OBS_KEY_observation": rng.normal(size=(T + 1, 3)).astype(np.float32),
        "rl2s": np.concatenate([np.r_[np.zeros((1, 1)), rews], np.r_[np.zeros((1, A)), act]], 1).astype(np.float32),
        "time_idxs": np.arange(T + 1)[:, None],
        "rews": rews,
        "dones": np.r_[np.zeros((T - 1, 1), bool), np.ones((1, 1), bool)],
        "actions": act,
    }
    path = os.path.join(directory, f"{env}_{seed:08x}_{1795538000 + t}.npz")
    np.savez(path, **arrays)
    return arrays, path


def amago_pad_collate(items):
    """AMAGO's collate, restated: pad every field with 4.0 along time (pad_sequence semantics)."""
    from torch.nn.utils.rnn import pad_sequence

    pad = lambda xs: pad_sequence(list(xs), batch_first=True, padding_value=4.0)  # noqa: E731
    return types.SimpleNamespace(
        obs={k: pad(i.obs[k] for i in items) for k in items[0].obs},
        rl2s=pad(i.rl2s for i in items),
        rews=pad(i.rews for i in items),
        dones=pad(i.dones for i in items),
        actions=pad(i.actions for i in items),
        time_idxs=pad(i.time_idxs for i in items),
    )


@pytest.fixture
def amago_files():
    """write_amago_npz and amago_pad_collate, as a namespace."""
    return types.SimpleNamespace(write=write_amago_npz, collate=amago_pad_collate)


@pytest.fixture(scope="session")
def real_amago():
    """The real AMAGO package from $AMAGO_SRC (an AMAGO checkout, e.g. ../shared/peers/amago).

    Unset: the test skips with the reason. Set but not importable: the test fails (CI sets
    it, so parity tests must run there, never skip). torch.compile inside AMAGO is turned
    off by the `no_dynamo` fixture: on CPU it would only add minutes of compilation.
    """
    import importlib
    import os

    src = os.environ.get("AMAGO_SRC")
    if not src:
        pytest.skip("AMAGO_SRC is not set: point it at an AMAGO checkout to run the tests against real AMAGO")
    if src not in sys.path:
        sys.path.insert(0, src)
    import warnings

    try:
        # AMAGO and its dependencies warn at import (missing flash-attn, deprecated torch
        # APIs); that is their noise, not a failure of ours (pytest turns warnings into errors)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            amago = importlib.import_module("amago")
            for sub in ("agent", "loading", "nets.transformer", "nets.traj_encoders", "nets.tstep_encoders"):
                importlib.import_module(f"amago.{sub}")
    except Exception as e:  # noqa: BLE001 - any import failure means AMAGO_SRC is unusable
        pytest.fail(f"AMAGO_SRC={src} is set but amago does not import: {type(e).__name__}: {e}")
    if not str(getattr(amago, "__file__", "")).startswith(os.path.abspath(src)):
        pytest.fail(f"`import amago` found {amago.__file__}, not the checkout at AMAGO_SRC={src}")
    return amago


@pytest.fixture
def no_dynamo():
    import torch._dynamo

    with torch._dynamo.config.patch(disable=True):
        yield

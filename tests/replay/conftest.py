"""Shared helpers for the replay tests (imported as fixtures; tests cannot import siblings)."""

from __future__ import annotations

import numpy as np
import pytest

from amago_fast import ReplayBuffer

# A Dict observation with odd shapes and several dtypes.
OBS_FIELDS = {"state": ((3,), np.float32), "image": ((2, 3, 5), np.uint8), "goal": ((), np.int64)}
A = 3


def random_traj(rng: np.random.Generator, T: int, obs_fields=OBS_FIELDS, A: int = A) -> dict:
    obs = {}
    for k, (shape, dtype) in obs_fields.items():
        dtype = np.dtype(dtype)
        if dtype.kind == "f":
            obs[k] = rng.normal(size=(T + 1,) + tuple(shape)).astype(dtype)
        elif dtype == np.bool_:
            obs[k] = rng.random((T + 1,) + tuple(shape)) < 0.5
        else:
            obs[k] = rng.integers(0, 100, size=(T + 1,) + tuple(shape)).astype(dtype)
    return {
        "obs": obs,
        "rl2s": rng.normal(size=(T + 1, 1 + A)).astype(np.float32),
        "time_idxs": np.arange(T + 1, dtype=np.int64) + rng.integers(0, 1000),
        "actions": rng.normal(size=(T, A)).astype(np.float32),
        "rews": rng.normal(size=T).astype(np.float32),
        "dones": rng.random(T) < 0.2,
    }


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def make_traj():
    return random_traj


@pytest.fixture
def filled_buffer():
    """factory(lengths, capacity=..., **kw) -> (buffer, {id: traj})"""

    def make(lengths, capacity=10_000, seed=7, **kw):
        r = np.random.default_rng(seed)
        buf = ReplayBuffer(OBS_FIELDS, A, capacity=capacity, seed=seed, **kw)
        trajs = {}
        for T in lengths:
            t = random_traj(r, int(T))
            trajs[buf.add_trajectory(**t)] = t
        return buf, trajs

    return make


def _assert_batch_equals(batch, ref: dict) -> None:
    """Compare a Batch with reference.cut_windows output, field by field."""
    for k in ("rl2s", "time_idxs", "actions", "rews", "dones", "mask"):
        np.testing.assert_array_equal(getattr(batch, k).numpy(), ref[k], err_msg=k)
    for k, v in ref["obs"].items():
        np.testing.assert_array_equal(batch.obs[k].numpy(), v, err_msg=f"obs[{k}]")
    np.testing.assert_array_equal(batch.starts.numpy(), ref["start"])


@pytest.fixture
def assert_batch_equals():
    return _assert_batch_equals

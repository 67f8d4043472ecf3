"""TorchRL interop: Batch <-> TensorDict, and SliceSampler-identical windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amago_fast import ReplayBuffer
from amago_fast.compat.torchrl import (
    SliceWindowSampler,
    batch_to_tensordict,
    tensordict_to_batch,
    trajectory_to_tensordict,
)


@pytest.fixture(autouse=True)
def _needs_tensordict():
    # Imported per test, not at collection: tensordict imports triton, and triton must not
    # be imported before tests/conftest.py decides TRITON_INTERPRET (it does, at startup).
    pytest.importorskip("tensordict")


A, OBS = 3, (2,)


def _traj(T: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    act = np.eye(A, dtype=np.float32)[rng.integers(A, size=T)]
    rews = rng.normal(size=T).astype(np.float32)
    return dict(
        obs={
            "observation": rng.normal(size=(T + 1,) + OBS).astype(np.float32),
            "goal": rng.integers(0, 9, size=(T + 1, 1)).astype(np.int64),
        },
        rl2s=np.concatenate([np.r_[0.0, rews][:, None], np.r_[np.zeros((1, A)), act]], 1).astype(np.float32),
        time_idxs=np.arange(T + 1),
        actions=act,
        rews=rews,
        dones=np.r_[np.zeros(T - 1, bool), [True]],
    )


def _buffer(lengths, seed=0):
    buf = ReplayBuffer({"observation": (OBS, np.float32), "goal": ((1,), np.int64)}, A, capacity=100_000, seed=seed)
    trajs = [_traj(T, i) for i, T in enumerate(lengths)]
    for t in trajs:
        buf.add_trajectory(**t)
    return buf, trajs


def _assert_batches_equal(a, b):
    assert a.obs.keys() == b.obs.keys()
    for k in a.obs:
        assert torch.equal(a.obs[k], b.obs[k]), k
    for name in ("rl2s", "time_idxs", "actions", "rews", "dones", "mask", "traj_ids", "starts"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("layout", ["amago", "torchrl"])
def test_round_trip_is_exact_and_zero_copy(layout):
    buf, _ = _buffer([5, 9, 30, 2])
    batch = buf.sample(6, 7, padded_sampling="both")
    td = batch_to_tensordict(batch, layout=layout)
    assert list(td.batch_size) == ([6] if layout == "amago" else [6, 7])
    _assert_batches_equal(tensordict_to_batch(td), batch)
    key = ("obs", "observation") if layout == "amago" else "observation"
    assert td.get(key).data_ptr() == batch.obs["observation"].data_ptr()  # a view, not a copy


def test_torchrl_layout_follows_step_convention():
    buf, _ = _buffer([12, 12])
    batch = buf.sample(4, 5)
    td = batch_to_tensordict(batch, layout="torchrl")
    assert torch.equal(td["next", "observation"][:, :-1], td["observation"][:, 1:])
    assert torch.equal(td["action"], batch.actions)
    assert torch.equal(td["next", "reward"], batch.rews)
    assert torch.equal(td["next", "terminated"], batch.dones)
    assert torch.equal(td["next", "mask"], batch.mask[:, 1:])  # real transitions
    assert torch.equal(td["collector", "traj_ids"][:, 0], batch.traj_ids)


def test_reserved_obs_key_and_bad_layout_raise():
    buf = ReplayBuffer({"action": (OBS, np.float32)}, A, capacity=100)
    t = _traj(4, 0)
    buf.add_trajectory(
        {"action": t["obs"]["observation"]}, t["rl2s"], t["time_idxs"], t["actions"], t["rews"], t["dones"]
    )
    batch = buf.sample(2, 3)
    with pytest.raises(ValueError, match="collide"):
        batch_to_tensordict(batch, layout="torchrl")
    with pytest.raises(ValueError, match="layout"):
        batch_to_tensordict(batch, layout="flat")


def _torchrl_buffer(trajs, slice_len, strict_length):
    torchrl = pytest.importorskip("torchrl")
    from tensordict import cat
    from torchrl.data import LazyTensorStorage, SliceSampler
    from torchrl.data import ReplayBuffer as TRB

    data = cat([trajectory_to_tensordict(t, i) for i, t in enumerate(trajs)], 0)
    rb = TRB(
        storage=LazyTensorStorage(data.shape[0]),
        sampler=SliceSampler(slice_len=slice_len, traj_key=("collector", "traj_ids"), strict_length=strict_length),
        batch_size=None,
    )
    rb.extend(data)
    assert torchrl is not None
    return rb


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_slice_windows_equal_torchrl_slice_sampler(seed):
    lengths = [3, 17, 8, 40, 5, 12, 8]  # 3 and 5 are too short for L=8 (strict_length)
    L, N = 8, 16
    buf, trajs = _buffer(lengths)
    rb = _torchrl_buffer(trajs, L, strict_length=True)
    torch.manual_seed(seed)
    theirs = rb.sample(N * L).reshape(N, L)
    torch.manual_seed(seed)
    ours = batch_to_tensordict(SliceWindowSampler(buf, L).sample(N), layout="torchrl")
    for key in ["observation", "goal", ("next", "observation"), "action", ("next", "reward"), ("next", "terminated")]:
        assert torch.equal(ours[key].to(theirs[key].dtype), theirs[key].reshape(ours[key].shape)), key
    assert ours["next", "mask"].all()


def test_non_strict_slices_cover_short_trajectories():
    buf, trajs = _buffer([3, 20])
    sampler = SliceWindowSampler(buf, 6, strict_length=False, generator=torch.Generator().manual_seed(0))
    tids, starts, seq = sampler.sample_index(200)
    assert set(tids.tolist()) == {0, 1}
    assert (seq[tids == 0] == 3).all() and (starts[tids == 0] == 0).all()
    assert starts[tids == 1].max() == 20 - 6 and starts.min() == 0  # every start reachable
    batch = sampler.sample(8)
    assert torch.equal(batch.mask.sum(1), torch.where(batch.traj_ids == 0, 4, 7))


def test_slice_sampler_bad_input():
    buf, _ = _buffer([3, 4])
    with pytest.raises(ValueError, match="slice_len"):
        SliceWindowSampler(buf, 0)
    with pytest.raises(ValueError, match="strict_length"):
        SliceWindowSampler(buf, 8).sample_index(4)
    with pytest.raises(ValueError, match="num_slices"):
        SliceWindowSampler(buf, 2).sample_index(0)

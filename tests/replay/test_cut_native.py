"""The native window cut of trajectory dicts (ReplayStore.cut_into) vs the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amago_fast.replay import reference as R

LENGTHS = [1, 2, 5, 8, 9, 13, 40]  # T = 1, T < L, T = L, T = L + 1, T >> L for L = 8


def _reference_starts(rng: R.Xoshiro256, lengths, L: int, mode: str) -> list:
    out = []
    for n in lengths:
        lo, hi = R.start_bounds(n, L, mode)
        out.append(lo + rng.below(hi - lo + 1) if n > L else 0)
    return out


@pytest.mark.parametrize("mode", R.PADDING_MODES)
@pytest.mark.parametrize("L", [1, 3, 8, 64])
def test_cut_windows_equals_reference(filled_buffer, make_traj, assert_batch_equals, mode, L):
    buf, _ = filled_buffer([4])
    r = np.random.default_rng(L)
    trajs = [make_traj(r, T) for T in LENGTHS * 3]
    rng = R.Xoshiro256(state=buf._store.rng_state)
    batch = buf.cut_windows(trajs, L, mode, traj_ids=np.arange(len(trajs)) + 100)
    starts = _reference_starts(rng, [len(t["actions"]) for t in trajs], L, mode)
    assert_batch_equals(batch, R.cut_windows(trajs, starts, L))
    assert batch.traj_ids.tolist() == list(range(100, 100 + len(trajs)))
    assert list(buf._store.rng_state) == rng.s  # exactly the reference's draws were made


def test_explicit_edge_starts(filled_buffer, make_traj, assert_batch_equals):
    buf, _ = filled_buffer([4])
    r = np.random.default_rng(0)
    L = 5
    trajs, starts = [], []
    for T in (1, 3, 5, 6, 20):
        for s in sorted({-L + 1, -1, 0, T // 2, T - 1}):
            trajs.append(make_traj(r, T))
            starts.append(s)
    state = list(buf._store.rng_state)
    batch = buf.cut_windows(trajs, L, raw_starts=starts)
    assert_batch_equals(batch, R.cut_windows(trajs, starts, L))
    assert (batch.traj_ids == -1).all()
    assert list(buf._store.rng_state) == state  # given starts: nothing drawn
    with pytest.raises(ValueError, match=r"raw_starts\[0\]"):
        buf.cut_windows(trajs[:1], L, raw_starts=[1])  # trajs[0] has T = 1
    with pytest.raises(ValueError, match="raw_starts"):
        buf.cut_windows(trajs[:2], L, raw_starts=[0])


def test_threads_do_not_change_the_batch(filled_buffer, make_traj):
    # large enough (> 1 MiB gathered) for the gather to start worker threads
    r = np.random.default_rng(3)
    trajs = [make_traj(r, int(T)) for T in r.integers(1, 400, 300)]
    out = []
    for threads in (1, 4):
        buf, _ = filled_buffer([4], num_threads=threads)
        out.append(buf.cut_windows(trajs, 256, "both"))
    for k in ("rl2s", "time_idxs", "actions", "rews", "dones", "mask", "starts"):
        assert torch.equal(getattr(out[0], k), getattr(out[1], k)), k
    for k in out[0].obs:
        assert torch.equal(out[0].obs[k], out[1].obs[k]), k


def test_inputs_outside_the_fast_path_are_converted(filled_buffer, make_traj, assert_batch_equals):
    """(T, 1) scalars, float64, int32, torch tensors: checked and cast in Python, then cut."""
    buf, _ = filled_buffer([4])
    r = np.random.default_rng(5)
    trajs = [make_traj(r, T) for T in (3, 7, 12)]
    odd = [dict(t, obs=dict(t["obs"])) for t in trajs]
    odd[0]["rews"] = trajs[0]["rews"].astype(np.float64)[:, None]
    odd[1]["time_idxs"] = torch.from_numpy(trajs[1]["time_idxs"].astype(np.int32))
    odd[1]["dones"] = trajs[1]["dones"][:, None]
    odd[2]["obs"]["state"] = trajs[2]["obs"]["state"].astype(np.float64)
    starts = [-2, 1, 4]
    assert_batch_equals(buf.cut_windows(odd, 6, raw_starts=starts), R.cut_windows(trajs, starts, 6))
    rng = R.Xoshiro256(state=buf._store.rng_state)
    b = buf.cut_windows(odd, 6, "left")
    assert_batch_equals(b, R.cut_windows(trajs, _reference_starts(rng, [3, 7, 12], 6, "left"), 6))


@pytest.mark.parametrize(
    "breakage, exc, msg",
    [
        (lambda t: t.pop("rews"), ValueError, r"trajs\[1\] has no 'rews'"),
        (lambda t: t.update(rews=t["rews"][:2]), ValueError, r"trajs\[1\]\.rews"),
        (lambda t: t.update(dones=t["dones"].astype(np.float32)), TypeError, r"trajs\[1\]\.dones"),
        (
            lambda t: t.update(actions=np.asfortranarray(np.zeros((6, 3), np.float32))[:, :2]),
            ValueError,
            r"trajs\[1\]\.actions",
        ),
        (lambda t: t.update(actions=np.zeros((0, 3), np.float32)), ValueError, "at least one transition"),
        (lambda t: t["obs"].pop("goal"), ValueError, "obs keys"),
        (lambda t: t["obs"].update(extra=np.zeros(7)), ValueError, "obs keys"),
        (lambda t: t.update(rl2s=t["rl2s"][::2]), ValueError, r"rl2s"),
    ],
)
def test_bad_trajectories_are_reported(filled_buffer, make_traj, breakage, exc, msg):
    buf, _ = filled_buffer([4])
    r = np.random.default_rng(6)
    trajs = [make_traj(r, 6), make_traj(r, 6)]
    breakage(trajs[1])
    state = list(buf._store.rng_state)
    with pytest.raises(exc, match=msg):
        buf.cut_windows(trajs, 4, "both")
    assert list(buf._store.rng_state) == state  # nothing drawn before the error
    with pytest.raises(TypeError, match=r"trajs\[0\] must be a trajectory dict"):
        buf.cut_windows([[1, 2]], 4)
    with pytest.raises(ValueError, match="traj_ids"):
        buf.cut_windows(trajs[:1], 4, traj_ids=[1, 2])


def test_views_match_trajectory(filled_buffer):
    buf, trajs = filled_buffer([3, 1, 17], protected_capacity=100)
    pid = buf.add_trajectory(**next(iter(trajs.values())), protected=True)
    ids = np.array([2, pid, 0, 2], np.int64)
    views = buf._store.views(ids)
    for i, v in zip(ids, views):
        ref = buf.trajectory(int(i))
        assert set(v) == set(ref) and set(v["obs"]) == set(ref["obs"])
        for k in ("rl2s", "time_idxs", "actions", "rews", "dones"):
            assert v[k].shape == ref[k].shape and v[k].dtype == ref[k].dtype
            np.testing.assert_array_equal(v[k], ref[k])
            assert not v[k].flags.writeable
        for k in ref["obs"]:
            np.testing.assert_array_equal(v["obs"][k], ref["obs"][k])
            assert not v["obs"][k].flags.writeable
    with pytest.raises(IndexError):
        buf._store.views(np.array([99], np.int64))


def test_relabeled_sample_into_out_and_identity(filled_buffer):
    class Identity:
        def relabel(self, trajs, rng_seed):
            return trajs

    buf, trajs = filled_buffer([1, 5, 30], relabeler=Identity())
    first = buf.sample(16, 6, "both")
    again = buf.sample(16, 6, "both", out=first)
    assert again is first
    for b in range(16):  # every window is a real cut of its (unchanged) trajectory
        t = trajs[int(first.traj_ids[b])]
        s, n = int(first.starts[b]), int(first.mask[b].sum())
        assert n >= 1 and first.mask[b, :n].all()
        np.testing.assert_array_equal(first.rl2s[b, :n].numpy(), t["rl2s"][s : s + n])
        np.testing.assert_array_equal(first.actions[b, : n - 1].numpy(), t["actions"][s : s + n - 1])
        assert (first.rl2s[b, n:] == 0).all()


def test_every_trajectory_converted_in_one_retry(filled_buffer, make_traj, assert_batch_equals, monkeypatch):
    buf, _ = filled_buffer([4])
    r = np.random.default_rng(8)
    trajs = [make_traj(r, int(T)) for T in r.integers(1, 30, 40)]
    odd = [dict(t, rews=t["rews"].astype(np.float64)) for t in trajs]
    calls = []
    store = buf._store

    class Counting:  # the native store, counting cut_into calls
        def __getattr__(self, name):
            return getattr(store, name)

        def cut_into(self, *a):
            calls.append(1)
            return store.cut_into(*a)

    monkeypatch.setattr(buf, "_store", Counting())
    starts = [0] * len(trajs)
    assert_batch_equals(buf.cut_windows(odd, 7, raw_starts=starts), R.cut_windows(trajs, starts, 7))
    calls.clear()
    rng = R.Xoshiro256(state=store.rng_state)
    b = buf.cut_windows(odd, 7, "right")
    assert len(calls) == 2  # one rejected pass, one after converting all 40
    lengths = [len(t["actions"]) for t in trajs]
    assert_batch_equals(b, R.cut_windows(trajs, _reference_starts(rng, lengths, 7, "right"), 7))


@pytest.mark.parametrize("mode", R.PADDING_MODES)
def test_relabeled_sample_by_length_equals_reference(filled_buffer, assert_batch_equals, mode):
    """weighting='length' + pin_memory (a no-op without CUDA) through the relabel hook."""
    seeds = []

    class Identity:
        def relabel(self, trajs, rng_seed):
            seeds.append(rng_seed)
            return trajs

    buf, trajs = filled_buffer([1, 3, 8, 9, 50], relabeler=Identity())
    L, B = 8, 30
    rng = R.Xoshiro256(state=buf._store.rng_state)
    batch = buf.sample(B, L, mode, weighting="length", pin_memory=True)
    ids = buf.trajectory_ids()
    cum = np.cumsum([len(trajs[i]["actions"]) for i in ids])
    idx = [int(np.searchsorted(cum, rng.below(int(cum[-1])), side="right")) for _ in range(B)]
    assert seeds == [rng.next()]
    chosen = [trajs[ids[i]] for i in idx]
    starts = _reference_starts(rng, [len(t["actions"]) for t in chosen], L, mode)
    assert_batch_equals(batch, R.cut_windows(chosen, starts, L))
    assert batch.traj_ids.tolist() == ids[idx].tolist()

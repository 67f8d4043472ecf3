"""The C++ window sampler against the pure-NumPy reference (amago_fast/replay/reference.py)."""

from __future__ import annotations

import numpy as np
import pytest

from amago_fast.replay import reference as R

MODES = R.PADDING_MODES
# short (< L), equal, just longer, much longer; T=1 and T=2 are the edge cases.
LENGTHS = [1, 2, 5, 16, 17, 18, 40, 97]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("weighting", ["uniform", "length"])
@pytest.mark.parametrize("L", [1, 16, 113])
def test_windows_match_reference(filled_buffer, assert_batch_equals, mode, weighting, L):
    buf, trajs = filled_buffer(LENGTHS)
    ids = buf.trajectory_ids()
    for _ in range(3):
        rng = R.Xoshiro256(state=buf._store.rng_state)
        batch = buf.sample(29, L, mode, weighting=weighting)
        idx, ref = R.sample_reference([trajs[i] for i in ids], rng, 29, L, mode, by_length=weighting == "length")
        np.testing.assert_array_equal(batch.traj_ids.numpy(), ids[idx])
        assert_batch_equals(batch, ref)
        assert rng.s == list(buf._store.rng_state)  # same number of draws consumed


def test_batch_layout(filled_buffer):
    buf, _ = filled_buffer([30, 7])
    b = buf.sample(4, 10)
    assert b.obs["state"].shape == (4, 11, 3) and b.obs["image"].shape == (4, 11, 2, 3, 5)
    assert b.obs["goal"].shape == (4, 11, 1) and b.obs["image"].dtype.is_floating_point is False
    assert b.rl2s.shape == (4, 11, 4) and b.time_idxs.shape == (4, 11, 1)
    assert b.actions.shape == (4, 10, 3) and b.rews.shape == (4, 10, 1) and b.dones.shape == (4, 10, 1)
    assert b.mask.shape == (4, 11) and b.mask.dtype.is_floating_point is False
    assert str(b.time_idxs.dtype) == "torch.int64" and str(b.dones.dtype) == "torch.bool"
    assert b.batch_size == 4 and b.seq_len == 10


@pytest.mark.parametrize("mode", MODES)
def test_same_seed_same_batches_any_threads(filled_buffer, mode):
    a, _ = filled_buffer(LENGTHS * 20, seed=3, num_threads=1)
    b, _ = filled_buffer(LENGTHS * 20, seed=3, num_threads=4)
    for _ in range(3):  # large enough to use several gather threads
        x, y = a.sample(512, 64, mode), b.sample(512, 64, mode)
        for k in ("rl2s", "actions", "mask", "traj_ids", "starts"):
            assert np.array_equal(getattr(x, k).numpy(), getattr(y, k).numpy())
        assert np.array_equal(x.obs["image"].numpy(), y.obs["image"].numpy())
    c, _ = filled_buffer(LENGTHS * 20, seed=4)
    assert not np.array_equal(c.sample(512, 64, mode).starts, a.sample(512, 64, mode).starts)


def test_draw_then_gather_equals_sample(filled_buffer):
    buf, _ = filled_buffer(LENGTHS)
    state = buf._store.rng_state
    ids, starts = buf.draw(16, 12, "both")
    g = buf.gather(ids, starts, 12)
    buf._store.rng_state = state
    s = buf.sample(16, 12, "both")
    for k in ("rl2s", "actions", "mask", "traj_ids", "starts", "rews"):
        assert np.array_equal(getattr(g, k).numpy(), getattr(s, k).numpy())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n,L", [(40, 8), (9, 8), (8, 8), (3, 8), (2, 1)])
def test_start_distribution_matches_design(filled_buffer, mode, n, L):
    """Exact support and a chi-square test of raw starts against docs/data.md's uniform rule."""
    buf, _ = filled_buffer([n])
    draws = 6000
    _, starts = buf.draw(draws, L, mode)
    lo, hi = R.start_bounds(n, L, mode)
    assert starts.min() >= lo and starts.max() <= hi
    k = hi - lo + 1
    counts = np.bincount(starts - lo, minlength=k)
    assert (counts > 0).all(), "every start in the docs/data.md range must be reachable"
    if k > 1:
        expected = draws / k
        chi2 = ((counts - expected) ** 2 / expected).sum()
        # 99.9% quantile of chi-square with k-1 dof (Wilson-Hilferty approximation)
        dof = k - 1
        q = dof * (1 - 2 / (9 * dof) + 3.09 * np.sqrt(2 / (9 * dof))) ** 3
        assert chi2 < q, (chi2, q)


def test_trajectory_choice_uniform_and_by_length(filled_buffer):
    buf, _ = filled_buffer([1, 10, 100])
    ids = buf.trajectory_ids()
    chosen, _ = buf.draw(30000, 4, "none")
    frac = np.array([(chosen == i).mean() for i in ids])
    np.testing.assert_allclose(frac, [1 / 3] * 3, atol=0.015)
    chosen, _ = buf.draw(30000, 4, "none", weighting="length")
    frac = np.array([(chosen == i).mean() for i in ids])
    np.testing.assert_allclose(frac, np.array([1, 10, 100]) / 111, atol=0.015)


@pytest.mark.parametrize("mode", MODES)
def test_windows_are_contiguous_slices_of_one_trajectory(filled_buffer, mode):
    """Invariant check with no reference: each real row is the stored row start + i."""
    buf, trajs = filled_buffer(LENGTHS)
    L = 16
    b = buf.sample(200, L, mode)
    for i in range(200):
        t = trajs[int(b.traj_ids[i])]
        s, k = int(b.starts[i]), int(b.mask[i].sum())
        n = len(t["actions"])
        assert k >= 2 and s + k - 1 <= n  # at least one transition, never past the end
        assert b.mask[i, :k].all() and not b.mask[i, k:].any()  # real rows first
        np.testing.assert_array_equal(b.time_idxs[i, :k, 0].numpy(), t["time_idxs"][s : s + k])
        np.testing.assert_array_equal(b.obs["image"][i, :k].numpy(), t["obs"]["image"][s : s + k])
        np.testing.assert_array_equal(b.actions[i, : k - 1].numpy(), t["actions"][s : s + k - 1])
        assert not b.actions[i, k - 1 :].any() and not b.obs["image"][i, k:].any()  # zero pad
        assert not b.dones[i, k - 1 :].any() and not b.time_idxs[i, k:].any()


def test_sample_into_out_batch(filled_buffer):
    a, _ = filled_buffer(LENGTHS, seed=5)
    b, _ = filled_buffer(LENGTHS, seed=5)
    out = b.sample(8, 12, "left")
    ref = a.sample(8, 12, "left")
    for _ in range(3):
        ref = a.sample(8, 12, "left")
        got = b.sample(8, 12, "left", out=out)
        assert got is out
        for k in ("rl2s", "time_idxs", "actions", "rews", "dones", "mask", "traj_ids", "starts"):
            assert np.array_equal(getattr(got, k).numpy(), getattr(ref, k).numpy()), k
        assert np.array_equal(got.obs["image"].numpy(), ref.obs["image"].numpy())
    with pytest.raises(ValueError, match="out"):
        b.sample(8, 13, "left", out=out)
    with pytest.raises(TypeError, match="out"):
        b.sample(8, 12, out={})

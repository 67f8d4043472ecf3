"""The relabeling hook: choose trajectories -> relabeler -> cut windows."""

from __future__ import annotations

import numpy as np
import pytest

from amago_fast.replay import reference as R


class HalveAndReward:
    """Keeps the first half of each trajectory and sets every reward to the seed's parity."""

    def __init__(self):
        self.seeds = []

    def relabel(self, trajs, rng_seed):
        self.seeds.append(rng_seed)
        out = []
        for t in trajs:
            T = max(1, len(t["actions"]) // 2)
            new = {k: np.array(v[: T + 1] if k in ("rl2s", "time_idxs") else v[:T]) for k, v in t.items() if k != "obs"}
            new["obs"] = {k: np.array(v[: T + 1]) for k, v in t["obs"].items()}
            new["rews"] = np.full(T, 1.0 + rng_seed % 2, np.float32)
            out.append(new)
        return out


@pytest.mark.parametrize("mode", R.PADDING_MODES)
def test_relabeled_windows(filled_buffer, mode):
    lab = HalveAndReward()
    buf, trajs = filled_buffer([1, 4, 9, 30, 61], relabeler=lab)
    L = 8
    rng = R.Xoshiro256(state=buf._store.rng_state)
    b = buf.sample(40, L, mode)
    # same draw order as the fast path: trajectories, then the relabeler's seed, then starts
    ids = buf.trajectory_ids()
    idx = [rng.below(len(ids)) for _ in range(40)]
    assert b.traj_ids.tolist() == ids[idx].tolist()
    assert lab.seeds == [rng.next()]
    halves = [lab.relabel([trajs[ids[i]]], lab.seeds[0])[0] for i in idx]
    starts = []
    for t in halves:
        lo, hi = R.start_bounds(len(t["actions"]), L, mode)
        starts.append(lo + rng.below(hi - lo + 1) if len(t["actions"]) > L else 0)
    ref = R.cut_windows(halves, starts, L)
    for k in ("rl2s", "time_idxs", "actions", "rews", "dones", "mask"):
        np.testing.assert_array_equal(getattr(b, k).numpy(), ref[k], err_msg=k)
    np.testing.assert_array_equal(b.obs["image"].numpy(), ref["obs"]["image"])
    assert (b.rews[b.mask[:, 1:]] == 1.0 + lab.seeds[0] % 2).all()


def test_stored_data_is_untouched_and_bad_relabelers_are_reported(filled_buffer):
    class Broken:
        def relabel(self, trajs, rng_seed):
            return trajs[:-1]

    class InPlace:
        def relabel(self, trajs, rng_seed):
            trajs[0]["rews"][:] = 5.0  # views are read-only: this must fail loudly
            return trajs

    buf, _ = filled_buffer([10, 20], relabeler=Broken())
    with pytest.raises(ValueError, match="relabel"):
        buf.sample(4, 5)
    buf.relabeler = InPlace()
    with pytest.raises(ValueError, match="read-only"):
        buf.sample(4, 5)


def test_cut_windows_validates_trajectories(filled_buffer, make_traj):
    buf, _ = filled_buffer([10])
    t = make_traj(np.random.default_rng(0), 6)
    t["rews"] = t["rews"][:3]
    with pytest.raises(ValueError, match=r"trajs\[0\]\.rews"):
        buf.cut_windows([t], 4)

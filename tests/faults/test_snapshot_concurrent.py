"""A snapshot is a point in time (issue 10, row B): a writer thread adding trajectories,
a saver thread and a sampler thread share one buffer; every snapshot loads with
verify=True and holds, field by field, exactly what was added, as one consistent state."""

from __future__ import annotations

import threading
import time

import numpy as np

from amago_fast import ReplayBuffer

T_MAX, OBS = 60, 512  # big enough rows that a torn copy is likely without the lock


def _traj(k: int) -> dict:
    """Trajectory number k: every value is a function of k, so a loaded copy is checkable."""
    T = 5 + k % T_MAX
    x = np.arange((T + 1) * OBS, dtype=np.float32).reshape(T + 1, OBS) + k * 1e3
    return {
        "obs": {"x": x},
        "rl2s": np.full((T + 1, 2), k, np.float32),
        "time_idxs": np.arange(T + 1) + k,
        "actions": np.full((T, 1), -k, np.float32),
        "rews": np.full(T, k % 97, np.float32),
        "dones": np.arange(T) == T - 1,
    }


def _check(buf: ReplayBuffer, id_to_k: dict) -> None:
    ids = buf.trajectory_ids().tolist()
    assert ids == list(range(ids[0], ids[0] + len(ids))), "not one FIFO state: ids have holes"
    assert buf._store.next_id == ids[-1] + 1, "the index and next_id are from different instants"
    for i in ids:
        want, got = _traj(id_to_k[i]), buf.trajectory(i)
        np.testing.assert_array_equal(got["obs"]["x"], want["obs"]["x"], err_msg=f"traj {i} obs")
        for key in ("rl2s", "time_idxs", "actions", "rews", "dones"):
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"traj {i} {key}")


def test_writer_saver_sampler_threads(tmp_path):
    buf = ReplayBuffer({"x": ((OBS,), np.float32)}, 1, capacity=3000, max_traj_len=T_MAX + 5, seed=1)
    id_to_k: dict[int, int] = {}
    stop, errors, verified = threading.Event(), [], []
    for k in range(40):  # start full so the ring wraps (evictions) during the test
        id_to_k[buf.add_trajectory(**_traj(k))] = k

    def writer():
        k = 40
        while not stop.is_set():
            id_to_k[buf.add_trajectory(**_traj(k))] = k  # the id is recorded right after add
            k += 1

    def sampler():
        while not stop.is_set():
            b = buf.sample(16, 12)
            assert b.obs["x"].shape == (16, 13, OBS)

    def saver():
        n = 0
        while not stop.is_set():
            d = tmp_path / f"snap{n % 3}"
            buf.save(d)
            new = ReplayBuffer.load(d)  # verify=True: every checksum holds
            while any(i not in id_to_k for i in new.trajectory_ids().tolist()):
                time.sleep(0.001)  # the writer has not recorded its last id yet
            _check(new, id_to_k)
            verified.append(n)
            n += 1

    def guard(fn):
        def run():
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)
                stop.set()

        return run

    threads = [threading.Thread(target=guard(f)) for f in (writer, sampler, saver)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and len(verified) < 8 and not stop.is_set():
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    assert len(verified) >= 3, f"only {len(verified)} snapshots were checked"
    assert max(id_to_k) > 40 + len(verified), "the writer did not run alongside the saves"

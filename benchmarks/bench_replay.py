"""Replay sampling: batch 24 x 256 from a 1M-timestep buffer (the replay throughput target in RESULTS.md).

Compares, in one run:
- ``native``: ReplayBuffer.sample (C++ gather, GIL released) -> torch tensors;
- ``numpy``: the pure-NumPy reference cutting the same kind of windows from in-memory
  trajectory dicts (amago_fast/replay/reference.py);
- ``amago_style``: AMAGO's path, one .npz file per trajectory on disk, each item
  loaded, sliced and padded, then stacked into tensors;
- ``memcpy``: one copy of exactly the bytes a batch gathers (the speed limit).

Sizes scale with AMAGO_FAST_BENCH_SCALE (default 0.01: 10k timesteps, quick for CI);
RESULTS.md numbers use AMAGO_FAST_BENCH_SCALE=1 (1M timesteps):
    AMAGO_FAST_BENCH_SCALE=1 pytest benchmarks/bench_replay.py
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from amago_fast import ReplayBuffer
from amago_fast.replay import reference as R

SCALE = float(os.environ.get("AMAGO_FAST_BENCH_SCALE", "0.01"))
TIMESTEPS = max(int(1_000_000 * SCALE), 5_000)
TRAJ_LEN = 500  # AMAGO-scale rollouts (a few episodes of a meta-RL task)
B, L = 24, 256
OBS_DIM, A = 64, 8  # 64 float observation, Discrete(8) actions one-hot
MODE = "both"


def _traj(rng, T):
    return {
        "obs": {"observation": rng.normal(size=(T + 1, OBS_DIM)).astype(np.float32)},
        "rl2s": rng.normal(size=(T + 1, 1 + A)).astype(np.float32),
        "time_idxs": np.arange(T + 1, dtype=np.int64),
        "actions": np.eye(A, dtype=np.float32)[rng.integers(0, A, T)],
        "rews": rng.normal(size=T).astype(np.float32),
        "dones": np.zeros(T, bool),
    }


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = TIMESTEPS // TRAJ_LEN
    buf = ReplayBuffer({"observation": ((OBS_DIM,), np.float32)}, A, capacity=TIMESTEPS, seed=0)
    trajs, files = [], []
    root = tmp_path_factory.mktemp("amago_buffer")
    for i in range(n):
        t = _traj(rng, TRAJ_LEN)
        buf.add_trajectory(**t)
        trajs.append(t)
        f = root / f"bench_{i}_{i}.npz"  # AMAGO's npz layout: rews/dones/time_idxs as (T, 1)
        np.savez(
            f,
            _OBS_KEY_observation=t["obs"]["observation"],
            rl2s=t["rl2s"],
            time_idxs=t["time_idxs"][:, None],
            actions=t["actions"],
            rews=t["rews"][:, None],
            dones=t["dones"][:, None],
        )
        files.append(f)
    assert buf.num_timesteps == n * TRAJ_LEN
    batch_bytes = sum(f.row_bytes * (L + 1 if f.obs_like else L) for f in buf.fields) * B
    batch_bytes += B * (L + 1)  # mask
    return buf, trajs, files, batch_bytes


def _report(benchmark, nbytes):
    benchmark.extra_info["batch_bytes"] = nbytes
    benchmark.extra_info["timesteps"] = TIMESTEPS
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        benchmark.extra_info["GB/s"] = round(nbytes / stats.stats.mean / 1e9, 2)


@pytest.mark.benchmark(group="replay-sample-24x256")
def test_native(benchmark, data):
    buf, _, _, nbytes = data
    batch = benchmark(buf.sample, B, L, MODE)
    assert batch.obs["observation"].shape == (B, L + 1, OBS_DIM)
    _report(benchmark, nbytes)


@pytest.mark.benchmark(group="replay-sample-24x256")
def test_native_1_thread(benchmark, data):
    buf, _, _, nbytes = data
    buf.num_threads = 1
    try:
        benchmark(buf.sample, B, L, MODE)
    finally:
        buf.num_threads = None
    _report(benchmark, nbytes)


@pytest.mark.benchmark(group="replay-sample-24x256")
def test_numpy_reference(benchmark, data):
    _, trajs, _, nbytes = data
    rng = np.random.default_rng(1)

    def sample():
        idx = rng.integers(0, len(trajs), B)
        starts = [int(rng.integers(*R.start_bounds(len(trajs[i]["actions"]), L, MODE)) + 0) for i in idx]
        w = R.cut_windows([trajs[i] for i in idx], starts, L)
        return {k: torch.from_numpy(v) for k, v in w.items() if k != "obs"}

    benchmark(sample)
    _report(benchmark, nbytes)


@pytest.mark.benchmark(group="replay-sample-24x256")
def test_amago_style(benchmark, data):
    _, _, files, nbytes = data
    rng = np.random.default_rng(2)

    def load_item():
        # AMAGO's TrajDset.__getitem__: pick a file, load it, slice a window, pad it
        with np.load(files[rng.integers(0, len(files))]) as z:
            d = {k: z[k] for k in z.files}
        n = len(d["rews"])
        lo, hi = R.start_bounds(n, L, MODE)
        start = int(rng.integers(lo, hi + 1))
        stop, start = start + L, max(start, 0)
        out = {}
        for k, v in d.items():
            end = stop + 1 if k in ("_OBS_KEY_observation", "rl2s", "time_idxs") else stop
            x = v[start:end]
            rows = L + 1 if end == stop + 1 else L
            out[k] = np.pad(x, [(0, rows - len(x))] + [(0, 0)] * (x.ndim - 1))
        return out

    def sample():
        items = [load_item() for _ in range(B)]
        return {k: torch.from_numpy(np.stack([it[k] for it in items])) for k in items[0]}

    benchmark(sample)
    _report(benchmark, nbytes)


@pytest.mark.benchmark(group="replay-sample-24x256")
def test_memcpy_hot(benchmark, data):
    """The same bytes copied again and again: source and destination stay in cache."""
    nbytes = data[3]
    src = np.random.default_rng(3).integers(0, 255, nbytes, dtype=np.uint8)
    dst = np.empty_like(src)
    benchmark(np.copyto, dst, src)
    _report(benchmark, nbytes)


@pytest.mark.benchmark(group="replay-sample-24x256")
def test_memcpy_cold(benchmark, data):
    """The same number of bytes from a rotating source as large as the buffer's arenas,
    like a sample drawn from a big buffer (the source is rarely in cache)."""
    buf, nbytes = data[0], data[3]
    total = sum(a.nbytes for a in buf._arenas[0])
    src = np.concatenate([a.reshape(-1).view(np.uint8) for a in buf._arenas[0]])[: total - total % nbytes]
    chunks = len(src) // nbytes
    dst = np.empty(nbytes, np.uint8)
    state = {"i": 0}

    def copy():
        i = state["i"] = (state["i"] + 7919) % chunks  # stride across the whole source
        np.copyto(dst, src[i * nbytes : (i + 1) * nbytes])

    benchmark(copy)
    _report(benchmark, nbytes)


@pytest.mark.benchmark(group="replay-sample-24x256")
def test_native_out(benchmark, data):
    """sample(out=batch): writes into an existing batch (no allocation, no page faults)."""
    buf, _, _, nbytes = data
    out = buf.sample(B, L, MODE)
    benchmark(buf.sample, B, L, MODE, out=out)
    _report(benchmark, nbytes)


@pytest.mark.benchmark(group="replay-stream-step")
def test_stream_step_16_envs(benchmark):
    """One StreamWriter.step for 16 envs (validation + staging + commits every 500 steps)."""
    N = 16
    buf = ReplayBuffer({"observation": ((OBS_DIM,), np.float32)}, A, capacity=TIMESTEPS, max_traj_len=TRAJ_LEN)
    w = buf.stream(N)
    obs = {"observation": np.zeros((N, OBS_DIM), np.float32)}
    rl2s, t = np.zeros((N, 1 + A), np.float32), np.zeros(N, np.int64)
    w.begin(obs, rl2s, t)
    act, rew, done = np.zeros((N, A), np.float32), np.zeros(N), np.zeros(N, bool)
    benchmark(w.step, act, rew, done, obs, rl2s, t)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        benchmark.extra_info["env_steps_per_s"] = round(N / stats.stats.mean)
    assert buf.num_timesteps % TRAJ_LEN == 0


# ---- relabeled sampling: sample(relabeler=...) vs plain sample, same B, L ----

HER_GOAL = 3
HER_SHAPES = {"tmaze": (24, 256, 500), "her": (16, 16, 50)}  # name: (B, L, trajectory length)


class _Identity:
    """A relabeler that changes nothing: the cost of the relabel hook alone."""

    def relabel(self, trajs, rng_seed):
        return trajs


def _python_relabeled_sample(buf, B, L, mode):
    """The relabeled path before the native cut (kept here as the 'before' baseline):
    Python views per trajectory, Python field checks, NumPy reference window cut."""
    from amago_fast.replay.batch import Batch

    ids = buf.store.draw_trajs(B, False)
    trajs = [buf.trajectory(i) for i in ids]
    new = buf.relabeler.relabel(trajs, int(buf.store.next_u64()))
    lengths = []
    for i, t in enumerate(new):
        T = len(t["actions"])
        buf.check_trajectory(
            t["obs"], t["rl2s"], t["time_idxs"], t["actions"], t["rews"], t["dones"], T, f"trajs[{i}]."
        )
        lengths.append(T)
    w = R.cut_windows(new, buf.store.draw_starts(np.asarray(lengths, np.int64), L, mode), L)
    t = torch.from_numpy
    return Batch(
        obs={k: t(v) for k, v in w["obs"].items()},
        rl2s=t(w["rl2s"]),
        time_idxs=t(w["time_idxs"]),
        actions=t(w["actions"]),
        rews=t(w["rews"]),
        dones=t(w["dones"]),
        mask=t(w["mask"]),
        traj_ids=t(ids),
        starts=t(w["start"].astype(np.int64)),
    )


@pytest.fixture(scope="module", params=sorted(HER_SHAPES))
def goal_buffer(request):
    """A goal-conditioned buffer (obs 16 + desired/achieved goal 3, 2-d actions) filled
    with random-walk episodes; returns (buffer, HERRelabeler, (B, L))."""
    relabel = pytest.importorskip("amago_fast.relabel")
    B_, L_, T = HER_SHAPES[request.param]
    n = max(TIMESTEPS // T, 2 * B_)
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(
        {
            "observation": ((16,), np.float32),
            "achieved_goal": ((HER_GOAL,), np.float32),
            "desired_goal": ((HER_GOAL,), np.float32),
        },
        2,
        capacity=n * T,
        seed=0,
    )
    for _ in range(n):
        ach = np.cumsum(rng.normal(scale=0.1, size=(T + 1, HER_GOAL)), 0).astype(np.float32)
        des = np.repeat(rng.normal(size=(1, HER_GOAL)).astype(np.float32), T + 1, 0)
        buf.add_trajectory(
            {"observation": rng.normal(size=(T + 1, 16)).astype(np.float32), "achieved_goal": ach, "desired_goal": des},
            rng.normal(size=(T + 1, 3)).astype(np.float32),
            np.arange(T + 1),
            rng.uniform(-1, 1, (T, 2)).astype(np.float32),
            np.zeros(T, np.float32),
            np.zeros(T, bool),
        )
    her = relabel.HERRelabeler(strategy="future", tolerance=0.05, failure_reward=-1.0, success_reward=0.0)
    return buf, her, (B_, L_), request.param


def _relabeled_case(benchmark, goal_buffer, relabeler, fn=None):
    buf, her, (B_, L_), name = goal_buffer
    benchmark.group = f"replay-relabeled-sample-{name}-{B_}x{L_}"
    buf.relabeler = {"her": her, "identity": _Identity(), None: None}[relabeler]
    try:
        batch = benchmark(buf.sample, B_, L_, MODE) if fn is None else benchmark(fn, buf, B_, L_, MODE)
    finally:
        buf.relabeler = None
    assert batch.actions.shape == (B_, L_, 2)
    benchmark.extra_info["transitions_per_call"] = int(batch.mask[:, 1:].sum())


def test_relabeled_plain_sample(benchmark, goal_buffer):
    """No relabeler: the store's own sampler (the floor for the relabeled path)."""
    _relabeled_case(benchmark, goal_buffer, None)


def test_relabeled_identity(benchmark, goal_buffer):
    """Relabel hook with a no-op relabeler: views + native cut of the returned dicts."""
    _relabeled_case(benchmark, goal_buffer, "identity")


def test_relabeled_her_native(benchmark, goal_buffer):
    """HERRelabeler("future") end to end: views -> C++ HER -> native window cut."""
    _relabeled_case(benchmark, goal_buffer, "her")


def test_relabeled_her_python_cut(benchmark, goal_buffer):
    """The same with the previous Python views + NumPy reference cut (the 'before')."""
    _relabeled_case(benchmark, goal_buffer, "her", _python_relabeled_sample)

"""Replay sampling: batch 24 x 256 from a 1M-timestep buffer (issue 2, item 6).

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
    return {"obs": {"observation": rng.normal(size=(T + 1, OBS_DIM)).astype(np.float32)},
            "rl2s": rng.normal(size=(T + 1, 1 + A)).astype(np.float32),
            "time_idxs": np.arange(T + 1, dtype=np.int64),
            "actions": np.eye(A, dtype=np.float32)[rng.integers(0, A, T)],
            "rews": rng.normal(size=T).astype(np.float32), "dones": np.zeros(T, bool)}


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
        np.savez(f, _OBS_KEY_observation=t["obs"]["observation"], rl2s=t["rl2s"],
                 time_idxs=t["time_idxs"][:, None], actions=t["actions"],
                 rews=t["rews"][:, None], dones=t["dones"][:, None])
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
        starts = [int(rng.integers(*R.start_bounds(len(trajs[i]["actions"]), L, MODE)) + 0)
                  for i in idx]
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
        np.copyto(dst, src[i * nbytes: (i + 1) * nbytes])

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
    buf = ReplayBuffer({"observation": ((OBS_DIM,), np.float32)}, A, capacity=TIMESTEPS,
                       max_traj_len=TRAJ_LEN)
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

"""Relabeled trajectories per second: C++ kernels vs the pure-Python references.

T = 500 and 2000 transitions, k = 3 goals of dimension 2 (MazeRunner's layout: float32
cells, tolerance 0). Trajectories are random walks on a 25 x 25 grid whose real goals
were never reached, the common case that relabeling exists for.
Sizes: AMAGO_FAST_BENCH_BATCH (default 64 trajectories for C++, 1/8 of that for Python).
Throughput = batch size / mean time, reported in extra_info["traj_per_s"].
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from amago_fast.relabel import HERRelabeler, MultiGoalRelabeler

BATCH = int(os.environ.get("AMAGO_FAST_BENCH_BATCH", "64"))
K, D, GRID = 3, 2, 25


def _walk(rng, T):
    steps = rng.integers(-1, 2, size=(T, D)) * (rng.random((T, 1)) < 0.7)
    cells = np.clip(np.cumsum(np.vstack([rng.integers(0, GRID, (1, D)), steps]), 0), 0, GRID - 1)
    return (cells / np.float32(GRID - 1)).astype(np.float32)  # (T+1, D)


def _traj(rng, T):
    ach = _walk(rng, T)
    goals = np.zeros((T + 1, K, D + 1), np.float32)
    goals[:, :, :D] = 2.0  # outside the grid: never reached
    acts = np.eye(4, dtype=np.float32)[rng.integers(0, 4, T)]  # (T, 4) one-hot
    rl2s = np.zeros((T + 1, 5), np.float32)
    rl2s[1:, 1:] = acts
    return {
        "obs": rng.standard_normal((T + 1, 6)).astype(np.float32),
        "goals": goals,
        "achieved": ach,
        "rl2s": rl2s,
        "time_idxs": np.arange(T + 1),
        "actions": acts,
        "rews": np.zeros(T, np.float32),
        "dones": np.zeros(T, bool),
    }


def _batch(T, n):
    rng = np.random.default_rng(T)
    return [_traj(rng, T) for _ in range(n)]


@pytest.mark.parametrize("T", [500, 2000])
@pytest.mark.parametrize("backend", ["cpp", "cpp-1thread", "python"])
def test_multigoal_throughput(benchmark, backend, T):
    n = max(1, BATCH // 8) if backend == "python" else BATCH
    trajs = _batch(T, n)
    relabeler = MultiGoalRelabeler(
        K,
        "some",
        backend="python" if backend == "python" else "cpp",
        num_threads=1 if backend == "cpp-1thread" else None,
    )
    seeds = iter(range(10**9))
    out = benchmark(lambda: relabeler.relabel(trajs, next(seeds)))
    assert len(out) == n
    if benchmark.stats is not None:
        benchmark.extra_info["traj_per_s"] = n / benchmark.stats.stats.mean
        benchmark.extra_info["batch"] = n


@pytest.mark.parametrize("T", [500, 2000])
@pytest.mark.parametrize("backend", ["cpp", "python"])
def test_her_throughput(benchmark, backend, T):
    n = max(1, BATCH // 8) if backend == "python" else BATCH
    trajs = _batch(T, n)
    for t in trajs:  # single-goal layout: one desired goal per row
        t["desired_goal"] = np.full((T + 1, D), 2.0, np.float32)
        t["achieved_goal"] = t["achieved"]
    relabeler = HERRelabeler("future", prob=1.0, backend=backend.split("-")[0])
    seeds = iter(range(10**9))
    out = benchmark(lambda: relabeler.relabel(trajs, next(seeds)))
    assert len(out) == n
    if benchmark.stats is not None:
        benchmark.extra_info["traj_per_s"] = n / benchmark.stats.stats.mean
        benchmark.extra_info["batch"] = n

"""Env steps/s of the vectorized time-step wrapper on tmaze (horizon 20).

Each round steps N copies ``AMAGO_BENCH_ENV_ROUNDS`` times (default 200) with random
actions; env steps/s = rounds * N / time. ``raw`` is gymnasium's own SyncVectorEnv on the
bare TMaze (same-step autoreset, no time-step bookkeeping): the wrapper's overhead is the
ratio between the two. Run: ``pytest benchmarks/bench_envs.py --benchmark-only``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from amago_fast.envs import EpsilonGreedy, TMaze, make_env

ROUNDS = int(os.environ.get("AMAGO_BENCH_ENV_ROUNDS", "200"))


def _record(benchmark, num_envs):
    stats = getattr(benchmark, "stats", None)
    if stats:  # absent under --benchmark-disable
        benchmark.extra_info["env_steps_per_s"] = ROUNDS * num_envs / stats.stats.mean


def _actions(num_envs):
    return np.random.default_rng(0).integers(0, 4, (ROUNDS, num_envs))


@pytest.mark.parametrize("num_envs", [1, 8, 32])
def test_tmaze_sync(benchmark, num_envs):
    env = make_env("tmaze", num_envs=num_envs, seed=0, horizon=20)
    env.reset()
    actions = _actions(num_envs)

    def run():
        for a in actions:
            env.step(a)

    benchmark(run)
    _record(benchmark, num_envs)
    env.close()


@pytest.mark.parametrize("num_envs", [1, 8, 32])
def test_tmaze_raw_gymnasium_sync(benchmark, num_envs):
    env = SyncVectorEnv([lambda: TMaze(horizon=20)] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)
    env.reset(seed=0)
    actions = _actions(num_envs)

    def run():
        for a in actions:
            env.step(a)

    benchmark(run)
    _record(benchmark, num_envs)
    env.close()


@pytest.mark.parametrize("num_envs", [8])
def test_tmaze_sync_with_exploration(benchmark, num_envs):
    env = make_env("tmaze", num_envs=num_envs, seed=0, horizon=20)
    explore = EpsilonGreedy(env.action_space, num_envs, seed=0)
    env.reset()
    actions = _actions(num_envs)

    def run():
        for a in actions:
            res = env.step(explore(a))
            explore.reset_envs(res.done)

    benchmark(run)
    _record(benchmark, num_envs)
    env.close()


@pytest.mark.parametrize("num_envs", [2, 8])
def test_tmaze_async(benchmark, num_envs):
    env = make_env("tmaze", num_envs=num_envs, seed=0, horizon=20, vectorization="async")
    env.reset()
    actions = _actions(num_envs)

    def run():
        for a in actions:
            env.step(a)

    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    _record(benchmark, num_envs)
    env.close()

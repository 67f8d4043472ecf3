"""Env steps/s: asynchronous actors (`--mode both`) vs the synchronous collect/learn loop.

Both runs use the same env, agent and learning schedule (the CLI's CPU agent; tmaze);
rates are taken from metrics.jsonl over the part of the run where learning is on
(env_steps >= learning_starts), so process start-up and the no-learning warm-up are
excluded for both. Quick by default (CI runs it once with --benchmark-disable); set
AMAGO_BENCH_ASYNC_STEPS (default 256) for real numbers, e.g.

    AMAGO_BENCH_ASYNC_STEPS=6000 python benchmarks/bench_async.py    # prints a table
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pytest

from amago_fast.agent import AgentConfig
from amago_fast.trainer import Trainer, TrainerConfig
from amago_fast.trainer.presets import CPU_AGENT

STEPS = int(os.environ.get("AMAGO_BENCH_ASYNC_STEPS", "256"))
LEARNING_STARTS = min(512, STEPS // 4)


def _configs(steps: int) -> tuple[TrainerConfig, AgentConfig]:
    tcfg = TrainerConfig(
        env="tmaze",
        env_args={"horizon": 10},
        num_envs=8,
        collect_steps=16,
        grad_steps_per_round=16,
        batch_size=24,
        learning_starts=LEARNING_STARTS,
        total_steps=steps,
        eval_every=0,
        eval_episodes=2,
        eval_envs=2,
        checkpoint_every=0,
        progress=False,
        torch_threads=1,
    )
    return tcfg, AgentConfig(**CPU_AGENT)


def _rates(run_dir: Path) -> dict[str, float]:
    recs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    on = [r for r in recs if r["env_steps"] >= LEARNING_STARTS and r["grad_steps"] > 0]
    a, b = on[0], on[-1]
    dt = max(1e-9, b["wall_s"] - a["wall_s"])
    return {
        "env_steps_per_s": (b["env_steps"] - a["env_steps"]) / dt,
        "grad_steps_per_s": (b["grad_steps"] - a["grad_steps"]) / dt,
        "wall_s": b["wall_s"],
        "env_steps": b["env_steps"],
        "grad_steps": b["grad_steps"],
    }


def measure(mode: str, steps: int, run_dir: Path, num_actors: int = 2) -> dict[str, float]:
    """mode "sync": Trainer.run; "async": AsyncLearner with num_actors actor processes."""
    tcfg, acfg = _configs(steps)
    if mode == "sync":
        trainer = Trainer(run_dir, tcfg, acfg)
    else:
        from amago_fast.distributed.actors import AsyncConfig
        from amago_fast.distributed.learner import AsyncLearner

        trainer = AsyncLearner(run_dir, tcfg, acfg, async_cfg=AsyncConfig(num_actors=num_actors))
    try:
        trainer.run()
    finally:
        trainer.close()
    return _rates(run_dir)


@pytest.mark.parametrize("mode,num_actors", [("sync", 0), ("async", 2)])
def test_env_steps_per_s(benchmark, tmp_path, mode, num_actors):
    """One training run per round; extra_info holds the steady-state rates."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out: dict = {}

    def once():
        d = Path(tempfile.mkdtemp(dir=tmp_path))
        out.update(measure(mode, STEPS, d, num_actors))

    benchmark.pedantic(once, rounds=1, iterations=1)
    benchmark.extra_info.update(out)
    assert out["env_steps"] >= STEPS and out["grad_steps"] > 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    for mode, n in [("sync", 0), ("async", 1), ("async", 2)]:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            r = measure(mode, STEPS, Path(d), n)
            r["total_s"] = time.perf_counter() - t0
        rows.append((mode if mode == "sync" else f"async, {n} actor{'s' * (n > 1)}", r))
        print(rows[-1], file=sys.stderr, flush=True)
    print(
        "| run | env steps/s (learning on) | grad steps/s (learning on) | env steps/s end to end | "
        "env steps | grad steps | grad steps per 1k env steps | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(
            f"| {name} | {r['env_steps_per_s']:.0f} | {r['grad_steps_per_s']:.1f} | "
            f"{r['env_steps'] / r['total_s']:.0f} | {r['env_steps']} | {r['grad_steps']} | "
            f"{1000 * r['grad_steps'] / r['env_steps']:.0f} | {r['total_s']:.1f} |"
        )

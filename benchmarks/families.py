"""Short learning runs on the environment families (RESULTS.md, "Environment families").

    python benchmarks/families.py FAMILY RUN_DIR [--minutes M] [--seed S]
    python benchmarks/families.py table RUN_DIR...     (the RESULTS.md rows)

Trains the family's config below (the CPU agent of amago_fast.trainer.presets, a
context of one whole episode) for a wall-clock budget, evaluating periodically;
measures a uniform-random policy on the same env and seeds in the same process; prints
one JSON line per evaluation and a summary (also written to RUN_DIR/summary.json) and
draws the curves (amago_fast.plotting, the random policy as a reference line).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amago_fast.agent import AgentConfig, action_kind
from amago_fast.envs import make_env
from amago_fast.trainer import Trainer, TrainerConfig, evaluate
from amago_fast.trainer.presets import CPU_AGENT

_COMMON = dict(
    num_envs=8,
    collect_steps=16,
    grad_steps_per_round=16,
    batch_size=16,
    eval_episodes=16,
    eval_envs=8,
    checkpoint_every=0,
    total_steps=10_000_000,
)

FAMILIES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    # name: (env, env_args, TrainerConfig overrides)
    "meta-frozen-lake": (
        "meta-frozen-lake",
        {"size": 5, "k_attempts": 3, "hole_prob": 0.2},
        dict(learning_starts=2_000, eval_every=4_000, eps_anneal_steps=40_000),
    ),
    "popgym-repeat-previous": (
        "popgym:RepeatPreviousEasy",
        {},
        dict(learning_starts=2_000, eval_every=4_000, eps_anneal_steps=40_000),
    ),
    "popgym-multi": ("popgym-multi", {}, dict(learning_starts=2_000, eval_every=4_000, eps_anneal_steps=40_000)),
    "babyai-goto-red-ball": (
        "babyai:GoToRedBallNoDists",
        {},
        dict(learning_starts=2_000, eval_every=4_000, eps_anneal_steps=40_000),
    ),
    "half-cheetah-vel": (
        "half-cheetah-vel",
        {"k_episodes": 2, "episode_steps": 100},
        dict(learning_starts=2_000, eval_every=4_000, eps_anneal_steps=40_000),
    ),
    "ale-breakout": (
        "ale:Breakout",
        {"max_episode_steps": 400},
        dict(
            num_envs=4,
            learning_starts=1_600,
            eval_every=3_200,
            eval_episodes=8,
            eval_envs=4,
            batch_size=8,
            eps_anneal_steps=40_000,
        ),
    ),
}


class RandomPolicy:
    """Uniform random raw actions in the agent's format (the Agent's acting interface)."""

    def __init__(self, action_space, seed: int):
        self.kind, self.dim = action_kind(action_space)
        self.rng = np.random.default_rng(seed)

    def init_state(self, n: int):
        return n

    def reset_state(self, state, env_ids) -> None:
        pass

    def get_actions(self, obs, rl2s, time_idxs, state, sample: bool = True):
        n = state
        if self.kind == "discrete":
            return self.rng.integers(self.dim, size=n), state
        if self.kind == "continuous":
            return self.rng.uniform(-1.0, 1.0, (n, self.dim)).astype(np.float32), state
        return self.rng.integers(0, 2, (n, self.dim)).astype(np.int8), state


def random_baseline(env: str, env_args: dict, episodes: int, seed: int) -> dict:
    probe = make_env(env, num_envs=1, seed=seed, **env_args)
    space = probe.action_space
    probe.close()
    return evaluate(RandomPolicy(space, seed), env, env_args, episodes, num_envs=8, seed=seed)


def table(run_dirs: list[str]) -> str:
    """The RESULTS.md rows from the runs' summary.json files."""
    rows = [
        "| family (env, args) | budget | env steps / grad steps | random | first eval | best eval | final (32 ep.) |",
        "|---|---|---|---:|---:|---:|---:|",
    ]

    def score(ev):
        if not ev:
            return "-"
        out = f"{ev['return_mean']:.2f}"
        return out + (f" ({ev['success_rate']:.0%} succ.)" if "success_rate" in ev else "")

    for d in run_dirs:
        s = json.loads(Path(d, "summary.json").read_text())
        args = ", ".join(f"{k}={v}" for k, v in s["env_args"].items())
        first = s["first_eval"]
        rows.append(
            f"| {s['family']} (`{s['env']}`{', ' + args if args else ''}) | {s['minutes']:g} min, seed {s['seed']} "
            f"| {s['env_steps']:,} / {s['grad_steps']:,} | {score(s['random'])} "
            f"| {score(first)} at {first['env_steps']:,} | {score(s['best_eval'])} at {s['best_eval']['env_steps']:,} "
            f"| {score(s['final'])} |"
        )
    return "\n".join(rows)


def main() -> None:
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "table":
        print(table(sys.argv[2:]))
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("family", choices=sorted(FAMILIES))
    p.add_argument("run_dir")
    p.add_argument("--minutes", type=float, default=7.0, help="training wall-time budget")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--episodes", type=int, default=32, help="episodes of the random and final evaluations")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="TrainerConfig override (JSON value), e.g. --set eval_every=500",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    env, env_args, over = FAMILIES[args.family]
    sets = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--set wants KEY=VALUE, got {item!r}")
        sets[key] = json.loads(value)
    tcfg = TrainerConfig(
        **{**_COMMON, **over, **sets, "env": env, "env_args": env_args, "seed": args.seed, "progress": False}
    )
    rand = random_baseline(env, env_args, args.episodes, seed=123_000 + args.seed)
    print(json.dumps({"random": rand}), flush=True)
    tr = Trainer(args.run_dir, tcfg, AgentConfig(**CPU_AGENT))
    t0, budget, evals = time.perf_counter(), args.minutes * 60, []
    while time.perf_counter() - t0 < budget:
        tr.run(total_steps=tr.env_steps + tcfg.eval_every)
        rec = {
            "env_steps": tr.env_steps,
            "grad_steps": tr.grad_steps,
            "wall_s": round(tr.wall_s, 1),
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in tr.last_eval.items()},
        }
        evals.append(rec)
        print(json.dumps(rec), flush=True)
    final = evaluate(tr.agent, env, env_args, args.episodes, num_envs=8, seed=123_000 + args.seed)
    tr.close()
    best = max(evals, key=lambda r: r.get("return_mean", -np.inf)) if evals else None
    summary = {
        "family": args.family,
        "env": env,
        "env_args": env_args,
        "seed": args.seed,
        "minutes": args.minutes,
        "env_steps": tr.env_steps,
        "grad_steps": tr.grad_steps,
        "wall_s": round(tr.wall_s, 1),
        "overrides": sets,
        "random": rand,
        "final": final,
        "best_eval": best,
        "first_eval": evals[0] if evals else None,
        "load_avg_end": os.getloadavg(),
    }
    print(json.dumps(summary), flush=True)
    Path(args.run_dir, "summary.json").write_text(json.dumps(summary, indent=1))
    try:
        from amago_fast.plotting import plot_run

        plot_run(args.run_dir, hlines={"eval/return_mean": {"random": rand["return_mean"]}})
    except ImportError:
        pass


if __name__ == "__main__":
    main()

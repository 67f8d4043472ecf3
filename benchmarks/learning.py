"""Learning runs for the CPU learning targets (docs/agent.md): `python benchmarks/learning.py PRESET RUN_DIR [--minutes M]`.

Trains the preset (amago_fast.trainer.presets) with a wall-clock budget, computes the
baseline where there is one (Thompson sampling for the bandit) in the same process,
prints one JSON summary line (first env steps / wall seconds at which the periodic
evaluation met the target and a --confirm-episodes evaluation on fresh tasks agreed) and writes the learning curves with amago_fast.plotting.plot_run.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from amago_fast.agent import AgentConfig
from amago_fast.trainer import Trainer, TrainerConfig, evaluate
from amago_fast.trainer.presets import PRESETS


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("preset", choices=sorted(PRESETS))
    p.add_argument("run_dir")
    p.add_argument("--minutes", type=float, default=30.0, help="stop after this much training wall time")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--confirm-episodes", type=int, default=512, help="episodes of the confirming evaluation")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    tkw, akw = PRESETS[args.preset]
    target_key, target = "eval/success_rate", 0.95
    baseline = None
    if tkw["env"] == "bandit":
        from amago_fast.envs.bandit import thompson_sampling_return

        a = tkw["env_args"]
        baseline = thompson_sampling_return(a["arms"], a["pulls"], 2000, seed=args.seed)
        target_key, target = "eval/return_mean", 0.95 * baseline
    tr = Trainer(args.run_dir, TrainerConfig(**{**tkw, "seed": args.seed, "progress": False}), AgentConfig(**akw))
    budget = args.minutes * 60
    t0 = time.perf_counter()
    hit = None
    while tr.env_steps < tr.cfg.total_steps and time.perf_counter() - t0 < budget:
        tr.run(total_steps=min(tr.cfg.total_steps, tr.env_steps + tr.cfg.eval_every))
        ev = tr.last_eval
        val = ev.get(target_key.split("/", 1)[1])
        print(
            json.dumps(
                {
                    "env_steps": tr.env_steps,
                    "grad_steps": tr.grad_steps,
                    "wall_s": round(tr.wall_s, 1),
                    **{k: round(v, 4) if isinstance(v, float) else v for k, v in ev.items()},
                }
            ),
            flush=True,
        )
        if hit is None and val is not None and val >= target:
            # confirm on many fresh tasks before claiming it (the periodic eval is small)
            conf = evaluate(
                tr.agent,
                tr.cfg.env,
                tr.cfg.env_args,
                args.confirm_episodes,
                tr.cfg.eval_envs,
                seed=999_000 + tr.evals,
                sample=tr.cfg.eval_sample,
            )
            print(json.dumps({"confirm": conf}), flush=True)
            if conf[target_key.split("/", 1)[1]] >= target:
                hit = {"env_steps": tr.env_steps, "wall_s": round(tr.wall_s, 1), "value": val, "confirm": conf}
                break
    tr.checkpoint()
    tr.close()
    summary = {
        "preset": args.preset,
        "target": f"{target_key} >= {target:.3f}",
        "reached": hit,
        "baseline_thompson": baseline,
        "final_eval": tr.last_eval,
        "env_steps": tr.env_steps,
        "grad_steps": tr.grad_steps,
        "wall_s": round(tr.wall_s, 1),
        "load_avg_end": os.getloadavg(),
    }
    print(json.dumps(summary), flush=True)
    Path(args.run_dir, "summary.json").write_text(json.dumps(summary, indent=1))
    try:
        from amago_fast.plotting import plot_run

        plot_run(args.run_dir)
    except ImportError:
        pass


if __name__ == "__main__":
    main()

"""Command line: `amago-fast train|eval|plot` (also `python -m amago_fast`).

    amago-fast train --env tmaze --env-arg horizon=20 --total-steps 20000 --run-dir runs/tmaze
    amago-fast train --run-dir runs/tmaze --resume            # continue from the last checkpoint
    amago-fast eval  --run-dir runs/tmaze --episodes 100      # prints one JSON line
    amago-fast plot  runs/tmaze                               # learning-curve PNGs
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

# CPU-sized agent defaults for `train` (a newcomer's first run must learn on a laptop CPU);
# --config {"agent": {...}} overrides them (e.g. AMAGO's d_model 256 on a GPU).
from .trainer.presets import CPU_AGENT



def parse_env_arg(text: str) -> tuple[str, Any]:
    """'k=v' -> (k, python literal v, or the raw string when v is not a literal)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--env-arg expects KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    if not k.isidentifier():
        raise argparse.ArgumentTypeError(f"--env-arg key {k!r} is not a valid name")
    try:
        return k, ast.literal_eval(v)
    except (ValueError, SyntaxError):
        return k, v


def load_config_file(path: str) -> dict:
    """JSON or TOML file with optional tables/objects "trainer" and "agent"."""
    p = Path(path)
    if not p.exists():
        raise SystemExit(f"--config: file not found: {path}")
    if p.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python < 3.11
            import tomli as tomllib  # type: ignore[no-redef]
        data = tomllib.loads(p.read_text())
    else:
        data = json.loads(p.read_text())
    unknown = set(data) - {"trainer", "agent"}
    if unknown:
        raise SystemExit(f"--config: top-level keys must be 'trainer' and/or 'agent', got {sorted(unknown)}")
    return data


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="amago-fast", description="AMAGO-style in-context RL")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train an agent (or --resume one)")
    t.add_argument("--env", default=None, help="env name (default tmaze)")
    t.add_argument("--env-arg", action="append", type=parse_env_arg, default=[], metavar="KEY=VALUE",
                   help="env keyword argument, repeatable (values parsed as Python literals)")
    t.add_argument("--total-steps", type=int, default=None, help="env steps to train for")
    t.add_argument("--run-dir", required=True, help="where metrics.jsonl and checkpoints/ go")
    t.add_argument("--device", default=None, help="cpu or cuda")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--num-envs", type=int, default=None)
    t.add_argument("--relabel", choices=("none", "some", "all"), default=None,
                   help="hindsight relabeling for multi-goal envs such as mazerunner (default none)")
    t.add_argument("--config", default=None, help="JSON/TOML with 'trainer' and 'agent' overrides")
    t.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--tensorboard", action="store_true", help="also log to TensorBoard (needs tensorboard)")
    t.add_argument("--wandb", action="store_true", help="also log to Weights & Biases (needs wandb)")
    t.add_argument("--mode", choices=("sync", "learner", "actor", "both"), default="sync",
                   help="sync: one process collects then learns; learner/actor: asynchronous halves "
                        "sharing --run-dir; both: a learner that starts --num-actors actors")
    t.add_argument("--num-actors", type=int, default=2, help="actor processes for --mode both")
    t.add_argument("--actor-id", type=int, default=0, help="this actor's id for --mode actor")

    e = sub.add_parser("eval", help="evaluate a run's last checkpoint; prints one JSON line")
    e.add_argument("--run-dir", required=True)
    e.add_argument("--episodes", type=int, default=100)
    e.add_argument("--num-envs", type=int, default=8)
    e.add_argument("--seed", type=int, default=12345)
    e.add_argument("--device", default="cpu")
    e.add_argument("--sample", action="store_true", help="sample actions instead of the policy's mode")

    pl = sub.add_parser("plot", help="write learning-curve PNGs of a run")
    pl.add_argument("run_dir")
    pl.add_argument("--out-dir", default=None)
    return p


def _train(args: argparse.Namespace) -> int:
    from amago_fast.agent import AgentConfig
    from amago_fast.trainer import Trainer, TrainerConfig

    run_dir = Path(args.run_dir)
    if args.mode == "actor":
        from amago_fast.distributed.actors import AsyncConfig, run_actor

        out = run_actor(run_dir, args.actor_id, AsyncConfig(actor_device=args.device or "cpu"), args.total_steps)
        print(json.dumps(out))
        return 0
    overrides: dict[str, Any] = {}
    for name in ("env", "total_steps", "device", "seed", "num_envs", "relabel"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.env_arg:
        overrides["env_args"] = dict(args.env_arg)
    if args.no_progress:
        overrides["progress"] = False
    for name in ("tensorboard", "wandb"):
        if getattr(args, name):
            overrides[name] = True
    if args.resume:
        saved = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").exists() else None
        if saved is None:
            raise SystemExit(f"--resume: {run_dir} has no config.json (not a run directory)")
        changed = {k for k in overrides if k not in ("total_steps", "progress", "device", "tensorboard", "wandb")}
        if changed or args.config:
            raise SystemExit(f"--resume continues the saved configuration; only --total-steps/--device/logging flags may change "
                             f"(got {sorted(changed) or '--config'})")
        tcfg = TrainerConfig.from_dict({**saved["trainer"], **overrides})
        trainer = _make_trainer(Trainer, run_dir, tcfg, None, resume=True, args=args)
    else:
        if (run_dir / "config.json").exists():
            raise SystemExit(f"{run_dir} already holds a run: use --resume or another --run-dir")
        file_cfg = load_config_file(args.config) if args.config else {}
        tcfg = TrainerConfig.from_dict({**file_cfg.get("trainer", {}), **overrides})
        acfg = AgentConfig.from_dict({**CPU_AGENT, **file_cfg.get("agent", {})})
        trainer = _make_trainer(Trainer, run_dir, tcfg, acfg, resume=False, args=args)
    try:
        result = trainer.run()
    finally:
        trainer.close()
    if getattr(trainer, "is_main", True):
        print(json.dumps({"env_steps": trainer.env_steps, "grad_steps": trainer.grad_steps, **result}))
    return 0


def _make_trainer(trainer_cls, run_dir: Path, tcfg, acfg, resume: bool, args: argparse.Namespace):
    """Trainer; an AsyncLearner for --mode learner|both; under torchrun (RANK/WORLD_SIZE
    set) a DistributedTrainer for this rank."""
    from amago_fast.distributed import launched_by_torchrun

    if args.mode in ("learner", "both"):
        if launched_by_torchrun():
            raise SystemExit("--mode learner/both is a single learner process: launch it without torchrun")
        from amago_fast.distributed.actors import AsyncConfig
        from amago_fast.distributed.learner import AsyncLearner

        acfg_async = AsyncConfig(num_actors=args.num_actors if args.mode == "both" else 0)
        return AsyncLearner(run_dir, tcfg, acfg, resume=resume, async_cfg=acfg_async)
    if not launched_by_torchrun():
        return trainer_cls(run_dir, tcfg, acfg, resume=resume)
    from amago_fast.distributed import init_distributed
    from amago_fast.distributed.ddp import barrier
    from amago_fast.distributed.trainer import DistributedTrainer

    ctx = init_distributed(tcfg.device)
    barrier(ctx)  # every rank has checked run_dir before rank 0 writes config.json
    return DistributedTrainer(run_dir, tcfg, acfg, resume=resume, ctx=ctx)


def _eval(args: argparse.Namespace) -> int:
    from amago_fast.agent import Agent, AgentConfig
    from amago_fast.envs import make_env
    from amago_fast.trainer import TrainerConfig, evaluate, latest_checkpoint, load_weights

    run_dir = Path(args.run_dir)
    if not (run_dir / "config.json").exists():
        raise SystemExit(f"{run_dir} has no config.json (not a run directory)")
    saved = json.loads((run_dir / "config.json").read_text())
    tcfg, acfg = TrainerConfig.from_dict(saved["trainer"]), AgentConfig.from_dict(saved["agent"])
    ckpt = latest_checkpoint(run_dir / "checkpoints")
    if ckpt is None:
        raise SystemExit(f"{run_dir} has no checkpoint yet")
    probe = make_env(tcfg.env, num_envs=1, **tcfg.env_args)
    agent = Agent(probe.policy_observation_space, probe.action_space, acfg, device=args.device)
    probe.close()
    load_weights(agent, ckpt)
    res = evaluate(agent, tcfg.env, tcfg.env_args, args.episodes, args.num_envs, seed=args.seed, sample=args.sample)
    print(json.dumps({**res, "checkpoint": ckpt.name}))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from amago_fast.plotting import plot_run

    for path in plot_run(args.run_dir, out_dir=args.out_dir):
        print(path)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return {"train": _train, "eval": _eval, "plot": _plot}[args.command](args)
    except (ValueError, TypeError) as e:  # bad --env-arg / --config values: the message names them
        if os.environ.get("AMAGO_FAST_DEBUG"):
            raise
        parser.exit(2, f"amago-fast {args.command}: error: {e}\n(set AMAGO_FAST_DEBUG=1 for the traceback)\n")


if __name__ == "__main__":
    sys.exit(main())

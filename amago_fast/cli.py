"""Command line: `amago-fast train|eval|plot` (also `python -m amago_fast`).

    amago-fast train --preset tmaze20 --run-dir runs/tmaze20  # a named preset
    amago-fast train --env tmaze --env-arg horizon=20 --total-steps 20000 --d-model 64 --run-dir runs/tmaze
    amago-fast train --run-dir runs/tmaze --resume            # continue from the last checkpoint
    amago-fast eval  --run-dir runs/tmaze --episodes 100      # prints one JSON line
    amago-fast plot  runs/seed0 runs/seed1                    # learning curves, runs overlaid

Every TrainerConfig and AgentConfig field is a flag (`amago-fast train --help` lists them
with their docstrings). Settings are layered: dataclass default < CPU agent < --preset <
--config file < flags. A mistake in what the user typed ends in one line on stderr and
exit code 2 (AMAGO_FAST_DEBUG=1 shows the traceback instead).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from .cli_config import add_config_flags, given

# flags that may change on --resume: they do not alter what the run computes
RESUMABLE = (
    "total_steps",
    "progress",
    "device",
    "tensorboard",
    "wandb",
    "wandb_project",
    "torch_threads",
    "checkpoint_interval_s",
)


class UserError(Exception):
    """A mistake in the command line, a config file or a run directory: one line, exit 2."""


def package_version() -> str:
    """amago_fast.__version__: written once, in amago_fast/_version.py, which pyproject.toml
    reads for the distribution's metadata (an editable install's metadata can be stale)."""
    from ._version import __version__

    return __version__


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


def _check_sections(data: Any, where: str) -> dict:
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected an object with 'trainer' and/or 'agent', got {type(data).__name__}")
    unknown = set(data) - {"trainer", "agent"}
    if unknown:
        raise UserError(
            f"{where}: top-level keys must be 'trainer' and/or 'agent', got {sorted(unknown)} "
            '(put TrainerConfig fields under "trainer", AgentConfig fields under "agent")'
        )
    for key in ("trainer", "agent"):
        if not isinstance(data.get(key, {}), dict):
            raise UserError(f"{where}: '{key}' must be an object, got {type(data[key]).__name__}")
    return data


def load_config_file(path: str) -> dict:
    """JSON or TOML file with optional tables/objects "trainer" and "agent"."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"--config: file not found: {path}")
    try:
        if p.suffix == ".toml":
            try:
                import tomllib
            except ImportError:  # Python < 3.11
                import tomli as tomllib  # type: ignore[no-redef]
            data = tomllib.loads(p.read_text())
        else:
            data = json.loads(p.read_text())
    except ValueError as e:  # JSONDecodeError, TOMLDecodeError
        raise UserError(f"--config {path}: not valid {'TOML' if p.suffix == '.toml' else 'JSON'}: {e}") from None
    return _check_sections(data, f"--config {path}")


def read_run_config(run_dir: Path) -> dict:
    """A run directory's config.json, checked to hold both 'trainer' and 'agent'."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise UserError(f"{run_dir} has no config.json (not a run directory)")
    try:
        data = json.loads(path.read_text())
    except ValueError as e:
        raise UserError(f"{path} is not valid JSON: {e}") from None
    _check_sections(data, str(path))
    missing = [k for k in ("trainer", "agent") if k not in data]
    if missing:
        raise UserError(f"{path} has no {' and no '.join(repr(k) for k in missing)} section")
    return data


def check_device(device: str) -> None:
    """cpu or cuda, and cuda only where this torch can use it."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"--device {device!r} is not a device: use cpu or cuda") from None
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"--device {device!r}: amago_fast runs on cpu or cuda")
    if dev.type == "cuda" and not torch.cuda.is_available():
        why = "is a CPU-only build" if torch.version.cuda is None else "sees no CUDA device"
        raise UserError(f"--device {device}: this torch ({torch.__version__}) {why}; use --device cpu")


def import_env_modules(modules: Sequence[str]) -> None:
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise UserError(f"--env-module {module}: cannot import it: {e}") from None


class _Parser(argparse.ArgumentParser):
    """argparse, with usage mistakes in one line (the full usage is 40 lines of flags)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (--help lists the flags)\n")


def build_parser() -> argparse.ArgumentParser:
    from .agent.config import AgentConfig
    from .trainer.config import TrainerConfig

    # CPU-sized agent defaults for `train` (a newcomer's first run must learn on a laptop
    # CPU); --config {"agent": {...}} or flags override them (AMAGO's --d-model 256 on a GPU)
    from .trainer.presets import CPU_AGENT, PRESETS

    p = _Parser(prog="amago-fast", description="AMAGO-style in-context RL")
    p.add_argument("--version", action="version", version=f"amago-fast {package_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "train",
        help="train an agent (or --resume one)",
        allow_abbrev=False,
        description="Train an agent. Settings: dataclass default < CPU agent < --preset < --config < flags.",
    )
    t.add_argument("--run-dir", required=True, help="where config.json, metrics.jsonl and checkpoints/ go")
    t.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="a named trainer + agent setting (amago_fast/trainer/presets.py)",
    )
    t.add_argument("--config", default=None, help="JSON/TOML with 'trainer' and 'agent' overrides")
    t.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    t.add_argument(
        "--env-arg",
        action="append",
        type=parse_env_arg,
        default=[],
        metavar="KEY=VALUE",
        help="env keyword argument, repeatable (values parsed as Python literals)",
    )
    t.add_argument(
        "--env-module",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (it registers your env), repeatable; kept in config.json",
    )
    t.add_argument(
        "--mode",
        choices=("sync", "learner", "actor", "both"),
        default="sync",
        help="sync: one process collects then learns; learner/actor: asynchronous halves "
        "sharing --run-dir; both: a learner that starts --num-actors actors",
    )
    t.add_argument("--num-actors", type=int, default=2, help="actor processes for --mode both")
    t.add_argument("--actor-id", type=int, default=0, help="this actor's id for --mode actor")
    tdests = add_config_flags(t, TrainerConfig, "trainer_", title="trainer (TrainerConfig fields)")
    adests = add_config_flags(
        t, AgentConfig, "agent_", shown_defaults=CPU_AGENT, title="agent (AgentConfig fields; defaults: the CPU agent)"
    )
    t.set_defaults(trainer_dests=tdests, agent_dests=adests)

    e = sub.add_parser("eval", help="evaluate a run's last checkpoint; prints one JSON line", allow_abbrev=False)
    e.add_argument("--run-dir", required=True)
    e.add_argument("--episodes", type=int, default=100)
    e.add_argument("--num-envs", type=int, default=8)
    e.add_argument("--seed", type=int, default=12345)
    e.add_argument("--device", default="cpu")
    e.add_argument("--sample", action="store_true", help="sample actions instead of the policy's mode")

    pl = sub.add_parser("plot", help="learning-curve PNGs of one run, or several overlaid", allow_abbrev=False)
    pl.add_argument(
        "run_dirs",
        nargs="+",
        metavar="RUN_DIR",
        help="run directories (seeds of one setting or "
        "different settings; runs sharing a name up to a trailing seed number are averaged)",
    )
    pl.add_argument("--out-dir", default=None, help="where the PNGs go (default: the run dir, or plots/ for several)")
    pl.add_argument(
        "--smooth",
        type=int,
        default=None,
        metavar="N",
        help="moving average over N points (default: about 1/20 of the points)",
    )
    pl.add_argument("--labels", nargs="+", default=None, help="legend names, one per run dir")
    return p


def _layered_configs(args: argparse.Namespace) -> tuple[dict, dict]:
    """Trainer and agent dicts: CPU agent < preset < --config file < flags."""
    from .trainer.presets import CPU_AGENT, PRESETS

    trainer, agent = {}, dict(CPU_AGENT)
    if args.preset:
        pt, pa = PRESETS[args.preset]
        trainer.update(pt)
        agent.update(pa)
    if args.config:
        file_cfg = load_config_file(args.config)
        trainer.update(file_cfg.get("trainer", {}))
        agent.update(file_cfg.get("agent", {}))
    flags = given(args, args.trainer_dests)
    if "env" in flags and flags["env"] != trainer.get("env", flags["env"]):
        trainer.pop("env_args", None)  # the preset's env arguments belong to its env
    trainer.update(flags)
    agent.update(given(args, args.agent_dests))
    return trainer, agent


def _env_overrides(args: argparse.Namespace, base: dict) -> dict:
    out = {}
    if args.env_arg:
        out["env_args"] = {**base.get("env_args", {}), **dict(args.env_arg)}
    if args.env_module:
        out["env_modules"] = [*base.get("env_modules", []), *args.env_module]
    return out


def _train(args: argparse.Namespace) -> int:
    from amago_fast.agent import AgentConfig
    from amago_fast.trainer import Trainer, TrainerConfig

    run_dir = Path(args.run_dir)
    if args.mode == "actor":
        from amago_fast.distributed.actors import AsyncConfig, run_actor

        device = given(args, args.trainer_dests).get("device", "cpu")
        check_device(device)
        if (run_dir / "config.json").exists():
            import_env_modules(read_run_config(run_dir)["trainer"].get("env_modules", []))
        out = run_actor(
            run_dir, args.actor_id, AsyncConfig(actor_device=device), given(args, args.trainer_dests).get("total_steps")
        )
        print(json.dumps(out))
        return 0
    if args.resume:
        saved = read_run_config(run_dir)
        flags = given(args, args.trainer_dests)
        changed = sorted({k for k in flags if k not in RESUMABLE} | set(given(args, args.agent_dests)))
        if args.env_arg or args.env_module:
            changed.append("env_args/env_modules")
        if changed or args.config or args.preset:
            raise UserError(
                "--resume continues the saved configuration; only --total-steps/--device/--torch-threads "
                f"and logging flags may change (got {changed or ('--config' if args.config else '--preset')})"
            )
        tcfg = TrainerConfig.from_dict({**saved["trainer"], **flags})
        check_device(tcfg.device)
        import_env_modules(tcfg.env_modules)
        _check_checkpoint_files(run_dir)
        trainer = _make_trainer(Trainer, run_dir, tcfg, None, resume=True, args=args)
    else:
        if (run_dir / "config.json").exists():
            raise UserError(f"{run_dir} already holds a run: use --resume or another --run-dir")
        tdict, adict = _layered_configs(args)
        tdict.update(_env_overrides(args, tdict))
        tcfg, acfg = TrainerConfig.from_dict(tdict), AgentConfig.from_dict(adict)
        check_device(tcfg.device)
        import_env_modules(tcfg.env_modules)
        trainer = _make_trainer(Trainer, run_dir, tcfg, acfg, resume=False, args=args)
        _report_context(acfg, trainer)
    try:
        result = trainer.run()
    finally:
        trainer.close()
    if getattr(trainer, "is_main", True):
        print(json.dumps({"env_steps": trainer.env_steps, "grad_steps": trainer.grad_steps, **result}))
    return 0


def _report_context(asked, trainer) -> None:
    """Say so when the trainer sized the context to the env (it changes speed a lot)."""
    got = getattr(trainer, "agent_cfg", None)
    if got is None or got.max_seq_len == asked.max_seq_len or not getattr(trainer, "is_main", True):
        return
    limit = getattr(trainer.env, "max_episode_steps", None)
    cap = getattr(trainer.cfg, "context_cap", 0)
    if limit is not None and cap and limit + 1 > cap:
        why = (
            f"the env's episodes last up to {limit} steps, longer than --context-cap {cap}, so the agent "
            f"trains and acts on sliding windows of {got.max_seq_len} tokens (--context-cap 0: whole episodes)"
        )
    else:
        why = (
            f"the env's episode limit is {limit} steps and context_from_env is on, so the agent sees whole "
            f"episodes; for a shorter, faster window pass --no-context-from-env --max-seq-len N"
        )
    print(f"amago-fast: context max_seq_len={got.max_seq_len} tokens (was {asked.max_seq_len}): {why}", file=sys.stderr)


def _warn_damaged(run_dir: Path, used: Optional[Path], command: str) -> None:
    """Name the newer checkpoints that are skipped because a file in them is damaged."""
    from amago_fast.policy import damaged_checkpoints

    for p in damaged_checkpoints(Path(run_dir) / "checkpoints", used):
        print(
            f"amago-fast {command}: skipping damaged checkpoint {p} (a truncated or corrupt file); "
            f"using {used.name if used else 'none'}",
            file=sys.stderr,
        )


def _check_checkpoint_files(run_dir: Path) -> None:
    """The checkpoint a resume starts from is read in full first, so a damaged file is named
    in one line instead of a safetensors traceback; damaged newer ones are named and skipped."""
    from amago_fast.policy import damaged_checkpoints
    from amago_fast.trainer import latest_checkpoint

    ckpt = latest_checkpoint(run_dir / "checkpoints")
    if ckpt is None and damaged_checkpoints(run_dir / "checkpoints", None):
        names = [p.name for p in damaged_checkpoints(run_dir / "checkpoints", None)]
        raise UserError(f"--resume: every checkpoint of {run_dir} is damaged or truncated: {names}")
    _warn_damaged(run_dir, ckpt, "train")
    if ckpt is not None:
        for f in sorted(ckpt.glob("*.safetensors")):
            _open_safetensors(f)


def _open_safetensors(path: Path) -> None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():  # reads every tensor: a truncated body fails here too
                f.get_tensor(key)
    except Exception as e:  # SafetensorError and OSError: the file, not the code, is at fault
        raise UserError(
            f"checkpoint file {path} is damaged or truncated ({e}); delete {path.parent} to use an older checkpoint"
        ) from None


def _make_trainer(trainer_cls, run_dir: Path, tcfg, acfg, resume: bool, args: argparse.Namespace):
    """Trainer; an AsyncLearner for --mode learner|both; under torchrun (RANK/WORLD_SIZE
    set) a DistributedTrainer for this rank."""
    from amago_fast.distributed import launched_by_torchrun

    if args.mode in ("learner", "both"):
        if launched_by_torchrun():
            raise UserError("--mode learner/both is a single learner process: launch it without torchrun")
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
    from amago_fast.policy import load_run
    from amago_fast.trainer import evaluate

    check_device(args.device)
    run = load_run(args.run_dir, device=args.device)
    _warn_damaged(Path(args.run_dir), run.checkpoint, "eval")
    tcfg = run.trainer_config
    res = evaluate(run.agent, tcfg.env, tcfg.env_args, args.episodes, args.num_envs, seed=args.seed, sample=args.sample)
    print(json.dumps({**res, "checkpoint": run.checkpoint.name}))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from amago_fast.plotting import plot_runs

    for d in args.run_dirs:
        if not Path(d).exists():
            raise UserError(f"plot: no run directory at {d}")
    if args.labels is not None and len(args.labels) != len(args.run_dirs):
        raise UserError(f"plot: --labels gives {len(args.labels)} names for {len(args.run_dirs)} run dirs")
    paths = plot_runs(args.run_dirs, out_dir=args.out_dir, smooth=args.smooth, labels=args.labels)
    if not paths:
        print(f"amago-fast plot: nothing to plot yet in {' '.join(args.run_dirs)} (no metrics logged)", file=sys.stderr)
    for path in paths:
        print(path)
    return 0


def _user_mistakes() -> tuple[type, ...]:
    """Exceptions that describe bad input (their message names it): one line, no traceback."""
    from amago_fast.trainer import ResumeError

    kinds: list[type] = [UserError, ValueError, TypeError, FileNotFoundError, ImportError, ResumeError]
    try:
        import gymnasium

        kinds.append(gymnasium.error.Error)
    except ImportError:
        pass
    try:
        from safetensors import SafetensorError

        kinds.append(SafetensorError)
    except ImportError:
        pass
    return tuple(kinds)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in == ["--version"]:  # without building the parser, which imports torch
        print(f"amago-fast {package_version()}")
        return 0
    parser = build_parser()
    args = parser.parse_args(args_in)
    from amago_fast.trainer import TrainingInterrupted

    try:
        return {"train": _train, "eval": _eval, "plot": _plot}[args.command](args)
    except TrainingInterrupted as e:  # the trainer saved a checkpoint first
        parser.exit(130, f"amago-fast {args.command}: {e}\n")
    except KeyboardInterrupt:  # before training began or outside it: nothing to save
        parser.exit(130, f"amago-fast {args.command}: interrupted\n")
    except _user_mistakes() as e:
        if os.environ.get("AMAGO_FAST_DEBUG"):
            raise
        msg = " ".join(str(e).split()) or type(e).__name__
        parser.exit(2, f"amago-fast {args.command}: error: {msg} (AMAGO_FAST_DEBUG=1 shows the traceback)\n")


if __name__ == "__main__":
    sys.exit(main())

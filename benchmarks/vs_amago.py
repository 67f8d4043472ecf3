"""amago_fast side by side with the real AMAGO, at the same settings, at the same time.

    AMAGO_SRC=../shared/peers/amago python benchmarks/vs_amago.py throughput --budget-s 60
    AMAGO_SRC=... python benchmarks/vs_amago.py tmaze --seeds 3 --budget-s 600 \\
        --amago-python /path/to/amago_venv/bin/python
    AMAGO_SRC=... python benchmarks/vs_amago.py dkd --seeds 2 --budget-s 900 --set room_size=5

Each run starts two processes (benchmarks/vs_amago_worker.py): AMAGO (its own
`Experiment` loop) and amago_fast (its `Trainer`), each pinned to its own CPU core with
one torch thread, both at once so they see the same machine load; the cores are swapped
on odd seeds. Both act in AMAGO's own env classes. Per run and seed it reports updates/s
(updates over the learning phase), env steps/s (over the collection phase), and the env
steps and training wall time (evaluation excluded) at which the evaluation's mean return
first reached the threshold, with amago_fast / AMAGO ratios. `throughput` trains both
on the same random batches at AMAGO's default size (no env) for --budget-s each.

AMAGO's env wrappers need gymnasium <= 0.29 (its exploration wrapper relies on attribute
forwarding that gymnasium 1.x removed): point --amago-python at an interpreter of such a
venv (default: $AMAGO_PYTHON, else this one). `throughput` needs no env and runs either way.
Results: JSON to --out (written atomically) and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from vs_amago_worker import Settings  # noqa: E402 - a sibling script, found through sys.path

# Per-task settings both systems use. AMAGO's examples (04_tmaze.py, 05_dark_key_door.py)
# use reward_multiplier 100; T-Maze gamma 0.9999. Model sizes are CPU-sized except
# `throughput`, which is AMAGO's default model (TformerTrajEncoder, FFTstepEncoder, heads).
PRESETS: dict[str, dict[str, Any]] = {
    "throughput": dict(
        task="throughput",
        d_model=256,
        n_heads=8,
        n_layers=3,
        d_ff=1024,
        tstep_hidden=512,
        tstep_dim=256,
        head_hidden=256,
        batch_size=24,
        max_seq_len=101,
        budget_s=60.0,
    ),
    "tmaze": dict(
        task="tmaze",
        horizon=20,
        max_seq_len=22,
        reward_multiplier=100.0,
        gamma=0.9999,
        parallel_envs=8,
        steps_per_epoch_per_env=64,
        updates_per_epoch=64,
        eps_anneal_per_env=1_500,
        eval_steps_per_env=84,
        threshold=0.999,
        budget_s=600.0,
    ),
    "dkd": dict(
        task="dkd",
        room_size=5,
        episode_length=20,
        meta_horizon=100,
        max_seq_len=101,
        reward_multiplier=100.0,
        parallel_envs=8,
        steps_per_epoch_per_env=100,
        updates_per_epoch=50,
        eps_anneal_per_env=2_000,
        eval_steps_per_env=100,
        threshold=6.0,
        budget_s=900.0,
    ),
}


def _parse_bool(raw: str) -> bool:
    """bool("False") is True: read the words instead."""
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _parse_set(items: list[str]) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or key not in fields:
            raise SystemExit(f"--set: expected KEY=VALUE with KEY one of {sorted(fields)}, got {item!r}")
        kind = type(getattr(Settings(), key))
        try:
            out[key] = _parse_bool(raw) if kind is bool else kind(raw)
        except ValueError:
            raise SystemExit(f"--set {key}: cannot read {raw!r} as {kind.__name__}") from None
    return out


def _write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
    os.replace(tmp, path)


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_pair(
    s: Settings, pythons: dict[str, str], cores: dict[str, int], work: Path, grace_s: float = 180.0
) -> dict[str, dict]:
    """Both workers at once, each on its core; returns {system: {"final":..., "log": [...]}}."""
    work.mkdir(parents=True, exist_ok=True)
    settings_path = work / "settings.json"
    _write_json_atomic(settings_path, dataclasses.asdict(s))
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        WANDB_MODE="disabled",
        TORCHDYNAMO_DISABLE=os.environ.get("TORCHDYNAMO_DISABLE", "1"),
    )
    amago_src = os.environ.get("AMAGO_SRC")
    if amago_src:
        env["PYTHONPATH"] = os.pathsep.join([amago_src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    procs = {}
    for system in ("amago", "fast"):
        out = work / f"{system}.jsonl"
        out.unlink(missing_ok=True)
        core = cores[system]
        with open(work / f"{system}.stdout", "w") as log:  # the worker holds its own copy of the fd
            procs[system] = (
                subprocess.Popen(
                    [pythons[system], str(HERE / "vs_amago_worker.py"), system, str(settings_path), str(out)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=lambda core=core: os.sched_setaffinity(0, {core}),
                ),
                out,
            )
    deadline = time.monotonic() + s.budget_s + grace_s  # the workers stop themselves; this is a backstop
    results = {}
    try:
        rcs = {}
        for system, (p, _) in procs.items():
            try:
                rcs[system] = p.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                rcs[system] = p.wait()
    finally:  # interrupted (Ctrl-C, SIGTERM): leave no worker behind
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut this short
        for p, _ in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    for system, (p, out) in procs.items():
        rc = rcs[system]
        log = _read_jsonl(out)
        final = next((r["final"] for r in log if "final" in r), None)
        results[system] = dict(rc=rc, final=final, log=[r for r in log if "final" not in r])
        if final is None:
            tail = (work / f"{system}.stdout").read_text()[-3000:]
            print(f"[vs_amago] {system} worker failed (rc={rc}):\n{tail}", file=sys.stderr)
    return results


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None or b == 0 else a / b


# Lower marks on the way to the threshold, reported beside it (first eval at or above).
# T-Maze (mean return = success rate minus 1/H per wasted step): 0.0 = walks the corridor
# cleanly, 0.5 = that plus half the turns right (chance without memory); dark key-door: returns (in the
# preset room a uniform random policy averages 1.9, an oracle that knows key and door 30).
MILESTONES: dict[str, list[float]] = {"tmaze": [0.0, 0.5], "dkd": [3.0, 4.5], "throughput": []}


def _first_at(log: list[dict], value: float) -> Optional[dict]:
    return next((r for r in log if r["env_steps"] > 0 and r["eval_return"] >= value), None)


def summarize_learning(res: dict[str, dict], milestones: list[float] = ()) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for system in ("amago", "fast"):
        f = res[system]["final"] or {}
        solved = f.get("solved")
        log = res[system]["log"]
        row[system] = dict(
            updates_per_s=_ratio(f.get("updates"), f.get("learn_s")),
            env_steps_per_s=_ratio(f.get("env_steps"), f.get("collect_s")),
            steps_to_threshold=solved["env_steps"] if solved else None,
            wall_to_threshold=solved["train_wall_s"] if solved else None,
            env_steps=f.get("env_steps"),
            updates=f.get("updates"),
            train_wall_s=f.get("train_wall_s"),
            best_eval_return=max((r["eval_return"] for r in log), default=None),
            milestones={str(m): (hit["env_steps"] if (hit := _first_at(log, m)) else None) for m in milestones},
        )
    # Sample efficiency without a threshold: the mean evaluation return over the env steps
    # both runs covered (a noisy task's first crossing of a threshold is a lottery ticket).
    common = min((row[k]["env_steps"] or 0) for k in ("amago", "fast"))
    row["common_env_steps"] = common
    for system in ("amago", "fast"):
        seen = [r["eval_return"] for r in res[system]["log"] if 0 < r["env_steps"] <= common]
        row[system]["mean_return_common"] = sum(seen) / len(seen) if seen else None
    a, b = row["fast"], row["amago"]
    row["ratio_fast_over_amago"] = {
        k: _ratio(a[k], b[k]) for k in ("updates_per_s", "env_steps_per_s", "steps_to_threshold", "wall_to_threshold")
    }
    # a difference, not a ratio: returns may be negative (T-Maze's are in [-1, 1])
    m = (a["mean_return_common"], b["mean_return_common"])
    row["mean_return_common_fast_minus_amago"] = None if None in m else m[0] - m[1]
    return row


def _fmt(x: Any, nd: int = 2) -> str:
    if x is None:
        return "not reached"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def _fmt_ratio(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def _fmt_diff(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x:+.3f}"


def learning_table(rows: list[dict], threshold: float) -> str:
    ms = list(rows[0]["amago"].get("milestones", {})) if rows else []
    head = [
        "seed",
        "system",
        "updates/s",
        "env steps/s",
        *[f"env steps to return >= {m}" for m in ms],
        f"env steps to threshold {threshold:g}",
        "train wall s to threshold",
        "env steps run",
        "best eval return",
        "mean eval return over the env steps both ran",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        for system, name in (("amago", "AMAGO"), ("fast", "amago_fast")):
            x = r[system]
            cells = [
                str(r["seed"]),
                name,
                _fmt(x["updates_per_s"]),
                _fmt(x["env_steps_per_s"], 0),
                *[_fmt(x["milestones"][m]) for m in ms],
                _fmt(x["steps_to_threshold"]),
                _fmt(x["wall_to_threshold"], 0),
                _fmt(x["env_steps"]),
                _fmt(x["best_eval_return"], 3),
                _fmt(x.get("mean_return_common"), 3) + f" (to {r.get('common_env_steps')})",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        q = r["ratio_fast_over_amago"]
        cells = [
            str(r["seed"]),
            "**fast / AMAGO**",
            f"**{_fmt_ratio(q['updates_per_s'])}**",
            _fmt_ratio(q["env_steps_per_s"]),
            *[_fmt_ratio(_ratio(r["fast"]["milestones"][m], r["amago"]["milestones"][m])) for m in ms],
            _fmt_ratio(q["steps_to_threshold"]),
            _fmt_ratio(q["wall_to_threshold"]),
            "",
            "",
            _fmt_diff(r.get("mean_return_common_fast_minus_amago")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def throughput_table(r: dict) -> str:
    """updates/s, and where the run counted them (newer workers), GFLOP per update and the
    GFLOP/s that makes: at equal GFLOP/s the updates/s ratio is the inverse FLOP ratio. With
    the dense-math floor (newer workers): the update's matmuls and attention replayed alone,
    its share of the measured update, and the ceiling it sets on the updates/s ratio (AMAGO's
    measured time over amago_fast's floor: what amago_fast would reach with zero overhead)."""
    flops = r.get("flops_per_update") or {}
    floors = {k: v for k, v in (r.get("dense_floor_s") or {}).items() if v is not None}
    gf = {k: (None if flops.get(k) is None else flops[k] / 1e9) for k in ("amago", "fast")}
    rate = {k: (None if gf[k] is None or r[k] is None else gf[k] * r[k]) for k in gf}
    ms = {k: (None if not r[k] else 1e3 / r[k]) for k in gf}
    floor_ms = {k: (None if floors.get(k) is None else 1e3 * floors[k]) for k in gf}
    share = {k: _ratio(floor_ms[k], ms[k]) for k in gf}
    head = "| system | updates/s | ms per update | GFLOP per update | GFLOP/s |"
    if floors:
        head += " dense-math floor, ms | floor / update |"

    def row(name: str, k: str) -> str:
        cells = [name, _fmt(r[k]), _fmt(ms[k], 0), _fmt(gf[k], 1), _fmt(rate[k], 1)]
        if floors:
            cells += [_fmt(floor_ms[k], 0), _fmt(share[k])]
        return "| " + " | ".join(cells) + " |"

    ratio = [
        "**fast / AMAGO**",
        f"**{_fmt_ratio(r['ratio_fast_over_amago'])}**",
        "",
        _fmt_ratio(_ratio(gf["fast"], gf["amago"])),
        _fmt_ratio(_ratio(rate["fast"], rate["amago"])),
    ]
    if floors:
        ratio += [_fmt_ratio(_ratio(floor_ms["fast"], floor_ms["amago"])), ""]
    lines = [head, "|" + "---|" * (head.count("|") - 1), row("AMAGO", "amago"), row("amago_fast", "fast")]
    lines.append("| " + " | ".join(ratio) + " |")
    if floors and ms["amago"] and floor_ms["fast"]:
        lines.append(
            f"\nCeiling at this math: AMAGO's {ms['amago']:.0f} ms per update over amago_fast's "
            f"{floor_ms['fast']:.0f} ms dense-math floor = {ms['amago'] / floor_ms['fast']:.2f}x updates/s "
            "with zero time outside matmuls and attention."
        )
    return "\n".join(lines)


def print_tables(report: dict) -> None:
    """The markdown table of a results JSON (`--table FILE` re-prints a saved one)."""
    if report["mode"] == "throughput":
        print(throughput_table(report["runs"][0]))
        return
    rows = []
    for run in report["runs"]:  # recomputed from the raw logs, so older files get milestones too
        raw = {k: dict(final=v["final"], log=v["log"]) for k, v in run["raw"].items()}
        rows.append(dict(seed=run["seed"], **summarize_learning(raw, MILESTONES[report["mode"]])))
    print(learning_table(rows, report["settings"]["threshold"]))


def main(argv: Optional[list[str]] = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=sorted(PRESETS) + ["table"], help="a task, or `table FILE`: re-print a results JSON")
    p.add_argument("file", nargs="?", type=Path, help="table: the results JSON")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1, one concurrent pair each (not throughput)")
    p.add_argument("--first-seed", type=int, default=0, help="start the seeds here (K..K+N-1)")
    p.add_argument("--budget-s", type=float, default=None, help="wall budget of each worker (preset default)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override Settings fields")
    p.add_argument("--out", type=Path, default=None, help="results JSON (default: vs_amago_<mode>.json here)")
    p.add_argument("--work-dir", type=Path, default=None, help="worker logs (default: a temp dir)")
    p.add_argument("--amago-python", default=os.environ.get("AMAGO_PYTHON", sys.executable))
    p.add_argument("--fast-python", default=sys.executable)
    args = p.parse_args(argv)
    if args.mode == "table":
        if args.file is None or not args.file.is_file():
            p.error(f"table: give an existing results JSON, got {args.file}")
        report = json.loads(args.file.read_text())
        print_tables(report)
        return report
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the workers' cleanup on kill
    if args.seeds < 1:
        p.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.first_seed < 0:
        p.error(f"--first-seed must be >= 0, got {args.first_seed}")
    if not os.environ.get("AMAGO_SRC"):
        p.error("set AMAGO_SRC to the AMAGO source folder (e.g. ../shared/peers/amago)")
    kw = dict(PRESETS[args.mode])
    kw.update(_parse_set(args.set))
    if args.budget_s is not None:
        kw["budget_s"] = args.budget_s
    try:
        base = Settings(**kw).check()
    except ValueError as e:
        p.error(str(e))
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        print(f"[vs_amago] only CPUs {cpus} available: both workers share one core", file=sys.stderr)
        cpus = cpus * 2
    pythons = {"amago": args.amago_python, "fast": args.fast_python}
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="vs_amago_"))
    out_path = args.out or HERE / f"vs_amago_{args.mode}.json"
    report: dict[str, Any] = dict(
        mode=args.mode,
        settings=dataclasses.asdict(base),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        cpus=cpus,
        pythons=pythons,
        load_avg_start=os.getloadavg(),
        runs=[],
    )
    seeds = [0] if args.mode == "throughput" else list(range(args.first_seed, args.first_seed + args.seeds))
    for seed in seeds:
        s = dataclasses.replace(base, seed=seed)
        cores = {"amago": cpus[seed % 2], "fast": cpus[(seed + 1) % 2]}
        res = run_pair(s, pythons, cores, work / f"seed{seed}")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        if args.mode == "throughput":
            finals = {k: res[k]["final"] or {} for k in ("amago", "fast")}
            ups = {k: f.get("updates_per_s") for k, f in finals.items()}
            flops = {k: f.get("flops_per_update") for k, f in finals.items()}
            row = dict(
                seed=seed,
                cores=cores,
                **ups,
                ratio_fast_over_amago=_ratio(ups["fast"], ups["amago"]),
                flops_per_update=flops,
                flops_ratio_amago_over_fast=_ratio(flops["amago"], flops["fast"]),
                dense_floor_s={k: f.get("dense_floor_s") for k, f in finals.items()},
            )
        else:
            row = dict(seed=seed, cores=cores, **summarize_learning(res, MILESTONES[args.mode]))
        row["raw"] = {k: dict(final=v["final"], rc=v["rc"], log=v["log"]) for k, v in res.items()}
        report["runs"].append(row)
        report["load_avg_end"] = os.getloadavg()
        _write_json_atomic(out_path, report)  # after every seed: an interrupted sweep keeps its runs
    print_tables(report)
    print(f"[vs_amago] results: {out_path}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()

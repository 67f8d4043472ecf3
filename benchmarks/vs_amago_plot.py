"""Learning curves of side-by-side runs (benchmarks/vs_amago.py results), one PNG.

    python benchmarks/vs_amago_plot.py vs_amago_results/tmaze_a.json [more.json ...] --out curves.png

Three panels: evaluation return against env steps, and against training wall time
(evaluation excluded; both systems ran at the same time, one core each), with one colour
per system, one thin line per seed, the per-seed median as a thick line and the run's
success threshold dashed; and the share of seeds that have reached the threshold against
env steps (a step per solved seed; a seed that never got there keeps the curve below 1).
Files of one task are merged (seeds from several sweeps); a seed found in two files keeps
the later file's run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

import numpy as np

COLOURS = {"amago": "tab:blue", "fast": "tab:orange"}
NAMES = {"amago": "AMAGO", "fast": "amago_fast"}


def load_runs(paths: list[Path]) -> tuple[dict, dict[int, dict]]:
    """(settings of the first file, {seed: run}) over files of one learning task."""
    settings, runs, mode = None, {}, None
    for path in paths:
        report = json.loads(Path(path).read_text())
        if report.get("mode") in (None, "throughput"):
            raise ValueError(f"{path}: not a learning run (mode {report.get('mode')!r}); throughput has no curves")
        if mode is not None and report["mode"] != mode:
            raise ValueError(f"{path}: task {report['mode']!r}, the other files are {mode!r}")
        mode, settings = report["mode"], settings or report["settings"]
        for run in report["runs"]:
            runs[int(run["seed"])] = run
    if not runs:
        raise ValueError("no runs in the given files")
    return settings, runs


def _median_curve(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Median over seeds on the union of x points, each curve held at its last value after
    it ends (a solved run stops at the threshold and stays solved)."""
    xs = np.unique(np.concatenate([x for x, _ in curves]))
    ys = [np.interp(xs, x, y, left=np.nan, right=y[-1]) for x, y in curves]
    return xs, np.nanmedian(np.vstack(ys), axis=0)


def seed_ranges(seeds) -> str:
    """[0, 1, 2, 5, 7, 8] -> "0-2, 5, 7-8"."""
    parts, seeds = [], sorted(seeds)
    for s in seeds:
        if parts and s == parts[-1][1] + 1:
            parts[-1][1] = s
        else:
            parts.append([s, s])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in parts)


def steps_to_threshold(runs: dict[int, dict], system: str, threshold: float) -> list[Optional[float]]:
    """Per seed (in seed order), the env steps of `system`'s first evaluation at or above
    `threshold`, or None where it never got there."""
    out = []
    for seed in sorted(runs):
        log = [r for r in runs[seed]["raw"][system]["log"] if "eval_return" in r]
        out.append(next((float(r["env_steps"]) for r in log if r["eval_return"] >= threshold), None))
    return out


def plot(paths: list[Path], out: Path, title: Optional[str] = None) -> Path:
    from amago_fast.plotting import _pyplot, _save

    settings, runs = load_runs(paths)
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.2))
    for ax, x_key, x_label in (
        (axes[0], "env_steps", "env steps (all parallel envs)"),
        (axes[1], "train_wall_s", "training wall time, s (evaluation excluded)"),
    ):
        for system in ("amago", "fast"):
            curves = []
            for run in runs.values():
                log = [r for r in run["raw"][system]["log"] if "eval_return" in r]
                if not log:
                    continue
                x = np.array([r[x_key] for r in log], float)
                y = np.array([r["eval_return"] for r in log], float)
                ax.plot(x, y, color=COLOURS[system], alpha=0.25, lw=0.8)
                curves.append((x, y))
            if curves:
                mx, my = _median_curve(curves)
                ax.plot(mx, my, color=COLOURS[system], lw=2.2, label=f"{NAMES[system]} (median of {len(curves)} seeds)")
        ax.axhline(settings["threshold"], color="k", ls="--", lw=1, label=f"threshold {settings['threshold']:g}")
        ax.set_xlabel(x_label)
        ax.set_ylabel("eval return (mean over episodes)")
        ax.grid(alpha=0.3)
    ax = axes[2]
    for system in ("amago", "fast"):
        steps = steps_to_threshold(runs, system, settings["threshold"])
        solved = np.sort([s for s in steps if s is not None])
        if len(solved):
            share = np.arange(1, len(solved) + 1) / len(steps)
            ax.step(
                np.r_[0.0, solved], np.r_[0.0, share], where="post", color=COLOURS[system], lw=2, label=NAMES[system]
            )
    ax.set_xlabel("env steps (all parallel envs)")
    ax.set_ylabel(f"share of {len(runs)} seeds at the threshold")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(title or f"{settings['task']}: AMAGO vs amago_fast, seeds {seed_ranges(runs)}")
    fig.tight_layout()
    return _save(fig, Path(out))


def main(argv: Optional[list[str]] = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", type=Path, help="vs_amago.py results JSON files of one task")
    p.add_argument("--out", type=Path, required=True, help="the PNG to write")
    p.add_argument("--title", default=None)
    args = p.parse_args(argv)
    for f in args.files:
        if not f.is_file():
            p.error(f"no such results file: {f}")
    try:
        path = plot(args.files, args.out, args.title)
    except ValueError as e:
        p.error(str(e))
    print(path)
    return path


if __name__ == "__main__":
    sys.exit(main() is None)

"""Learning curves of side-by-side runs (benchmarks/vs_amago.py results), one PNG.

    python benchmarks/vs_amago_plot.py vs_amago_results/tmaze_a.json [more.json ...] --out curves.png

Two panels: evaluation return against env steps, and against training wall time
(evaluation excluded; both systems ran at the same time, one core each). One colour per
system, one thin line per seed, the per-seed median as a thick line, and the run's
success threshold dashed. Files of one task are merged (seeds from several sweeps); a
seed found in two files keeps the later file's run.
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


def plot(paths: list[Path], out: Path, title: Optional[str] = None) -> Path:
    from amago_fast.plotting import _pyplot, _save

    settings, runs = load_runs(paths)
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
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
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(title or f"{settings['task']}: AMAGO vs amago_fast, seeds {sorted(runs)}")
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

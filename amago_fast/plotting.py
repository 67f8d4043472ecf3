"""Learning curves from runs' metrics.jsonl (matplotlib, Agg backend: no display needed).

``plot_runs([run_a, run_b, ...])`` (``amago-fast plot run_a run_b``) overlays runs with a
legend and writes:

- ``summary.png``: one page to keep: evaluation return (mean +- std band) and success
  rate against env steps, return against wall-clock time, the critic loss;
- ``eval_vs_env_steps.png`` / ``eval_vs_wall_s.png``: every ``eval/*`` metric;
- ``train_vs_grad_steps.png`` (then ``_2``, ``_3``, ...): every other logged metric, nine
  panels a page, so nothing is dropped (update statistics against gradient steps,
  rollout statistics such as the training return against env steps).

Bands: for one run, +- the std over evaluation episodes where it is logged
(``eval/return_std``); runs whose names differ only by a trailing seed number
(``tmaze_s0``, ``tmaze_s1``) are averaged into one line with a +- std band across seeds.
A moving average (``smooth`` points; default about 1/20 of them) is drawn over the
faint raw curve. A resumed run that logged some steps twice keeps the later records.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .logging import STEP_KEYS, read_metrics

PANELS_PER_PAGE = 9
_X_LABEL = {"env_steps": "env steps (summed over parallel envs)", "grad_steps": "gradient steps"}
_Y_LABEL = {
    "eval/return_mean": "eval return (mean over episodes)",
    "eval/success_rate": "eval success rate (fraction of episodes)",
    "eval/length_mean": "eval episode length (steps)",
    "train/return_mean": "training return (mean over episodes)",
    "train/success_rate": "training success rate (fraction)",
    "train/lr": "learning rate",
    "train/grad_norm": "gradient norm (before clipping)",
    "epsilon": "exploration epsilon (ceiling)",
}
_STD_OF = {"eval/return_mean": "eval/return_std"}


def _pyplot():
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError("plotting needs matplotlib: pip install 'amago_fast[plot]'") from e
    matplotlib.use("Agg", force=False)  # headless; keeps a backend the user already chose
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Write atomically: a reader never sees a half-written PNG."""
    fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".png.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def curve(records: list[dict], x_key: str, y_key: str) -> tuple[np.ndarray, np.ndarray]:
    """(xs, ys) sorted by x; a repeated x (a resumed run re-logging steps) keeps the last."""
    last: dict[float, float] = {}
    for r in records:
        if _num(r.get(x_key)) and _num(r.get(y_key)):
            last[float(r[x_key])] = float(r[y_key])
    xs = np.array(sorted(last), float)
    return xs, np.array([last[x] for x in xs], float)


def smooth(ys: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over `window` points (shrinking at the ends)."""
    if window <= 1 or len(ys) < 3:
        return ys
    k = np.ones(min(window, len(ys)))
    return np.convolve(ys, k, "same") / np.convolve(np.ones_like(ys), k, "same")


def metric_keys(records: list[dict]) -> list[str]:
    """Every numeric key that is not a step counter, in first-logged order."""
    keys: dict[str, None] = {}
    for r in records:
        for k, v in r.items():
            if k not in STEP_KEYS and _num(v):
                keys.setdefault(k, None)
    return list(keys)


def x_key_for(key: str) -> str:
    """Update statistics against gradient steps; rollout statistics against env steps."""
    rollout = key.startswith("eval/") or key in ("epsilon", "train/return_mean", "train/success_rate")
    return "env_steps" if rollout or not key.startswith("train/") else "grad_steps"


def _group_name(name: str) -> str:
    """'tmaze_seed3' / 'tmaze-s3' / 'tmaze3' -> 'tmaze': seeds of one setting share a line."""
    return re.sub(r"[-_.]?(seed|s)?\d+$", "", name) or name


class _Line:
    """One legend entry: one run, or several seeds averaged."""

    def __init__(self, label: str, runs: list[list[dict]]):
        self.label, self.runs = label, runs

    def xy(self, x_key: str, y_key: str, window: int):
        """(xs, raw ys, smoothed ys, band or None)."""
        curves = [c for c in (curve(r, x_key, y_key) for r in self.runs) if len(c[0])]
        if not curves:
            return None
        if len(curves) == 1:
            xs, ys = curves[0]
            std_key = _STD_OF.get(y_key)
            band = None
            if std_key:
                sx, sd = curve(self.runs[0], x_key, std_key)
                if len(sx) == len(xs) and np.array_equal(sx, xs):
                    band = smooth(sd, window)
            return xs, ys, smooth(ys, window), band
        hi = min(c[0][-1] for c in curves)  # the x range every seed covered
        xs = np.unique(np.concatenate([c[0][c[0] <= hi] for c in curves]))
        grid = np.stack([np.interp(xs, cx, smooth(cy, window)) for cx, cy in curves])
        mean = grid.mean(0)
        return xs, mean, mean, grid.std(0)


def _lines(run_dirs: Sequence, labels: Optional[Sequence[str]]) -> list[_Line]:
    named = []
    for i, d in enumerate(run_dirs):
        p = Path(d)
        records = read_metrics(p)
        name = labels[i] if labels else (p.name if p.is_dir() else p.parent.name)
        named.append((name, records))
    if labels or len(named) == 1:
        return [_Line(n, [r]) for n, r in named]
    groups: dict[str, list[list[dict]]] = {}
    for n, r in named:
        groups.setdefault(_group_name(n), []).append(r)
    if all(len(g) == 1 for g in groups.values()):  # no seeds to pool: keep full names
        return [_Line(n, [r]) for n, r in named]
    return [_Line(f"{g} ({len(rs)} seeds)" if len(rs) > 1 else g, rs) for g, rs in groups.items()]


def _window(lines: list[_Line], x_key: str, y_key: str, smooth_n: Optional[int]) -> int:
    if smooth_n is not None:
        return max(1, int(smooth_n))
    n = max((len(curve(r, x_key, y_key)[0]) for ln in lines for r in ln.runs), default=0)
    return max(1, n // 20)


def _wall_unit(lines: list[_Line]) -> tuple[float, str]:
    top = max(
        (r.get("wall_s", 0) for ln in lines for run in ln.runs for r in run if _num(r.get("wall_s"))), default=0.0
    )
    return (60.0, "min") if top > 180 else (1.0, "s")


def _draw(ax, lines, x_key, y_key, smooth_n, hlines, x_scale=1.0):
    window = _window(lines, x_key, y_key, smooth_n)
    drew = bands = False
    for i, ln in enumerate(lines):
        got = ln.xy(x_key, y_key, window)
        if got is None:
            continue
        xs, raw, sm, band = got
        xs = xs / x_scale
        color = f"C{i % 10}"
        if window > 1 and len(ln.runs) == 1:
            ax.plot(xs, raw, color=color, alpha=0.25, lw=0.8)
        ax.plot(
            xs,
            sm,
            color=color,
            lw=1.6,
            marker="o" if len(xs) < 25 else None,
            ms=3,
            label=ln.label if len(lines) > 1 else None,
        )
        if band is not None:
            ax.fill_between(xs, sm - band, sm + band, color=color, alpha=0.18, lw=0)
            bands = True
        drew = True
    for (label, value), color in zip((hlines or {}).get(y_key, {}).items(), ("gray", "tab:red", "tab:green")):
        ax.axhline(value, ls="--", lw=1, color=color, label=f"{label} ({value:g})")
    ax.set_ylabel(_Y_LABEL.get(y_key, y_key.split("/")[-1].replace("_", " ")), fontsize=9)
    notes = [f"smoothed over {window}"] if window > 1 else []
    if bands:
        notes.append("band: +-std " + ("across seeds" if any(len(ln.runs) > 1 for ln in lines) else "over episodes"))
    ax.set_title(f"{y_key} vs {x_key}" + (f"  ({', '.join(notes)})" if notes else ""), fontsize=9)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    return drew


def _page(plt, lines, panels, title, smooth_n, hlines, wall):
    """panels: [(x_key, y_key)]; None when no panel has data."""
    cols = 2 if len(panels) == 4 else min(len(panels), 3)
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols, 3.5 * rows), squeeze=False)
    drew = False
    for ax, (x_key, y_key) in zip(axes.flat, panels):
        scale, unit = wall if x_key == "wall_s" else (1.0, "")
        drew |= _draw(ax, lines, x_key, y_key, smooth_n, hlines, x_scale=scale)
        ax.set_xlabel(f"wall-clock time ({unit})" if x_key == "wall_s" else _X_LABEL.get(x_key, x_key), fontsize=9)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    if not drew:
        plt.close(fig)
        return None
    return fig


def plot_runs(
    run_dirs: Sequence,
    out_dir=None,
    smooth: Optional[int] = None,
    labels: Optional[Sequence[str]] = None,
    hlines: Optional[dict] = None,
) -> list[Path]:
    """Write the PNGs described in the module docstring; returns their paths.

    Args:
        run_dirs: run directories holding metrics.jsonl (or the metrics files themselves).
        out_dir: where the PNGs go (default: the run directory; ``plots/`` beside the first
            run for several).
        smooth: moving-average window in points (1: none; default about 1/20 of them).
        labels: legend names, one per run (default: directory names, seeds pooled).
        hlines: reference lines per metric, e.g. ``{"eval/return_mean": {"Thompson": 75.0}}``.
    Returns:
        the PNG paths written (empty if the logs hold nothing plottable).
    """
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise ValueError("run_dirs: give at least one run directory")
    if labels is not None and len(labels) != len(run_dirs):
        raise ValueError(f"labels: {len(labels)} names for {len(run_dirs)} runs")
    lines = _lines(run_dirs, labels)
    first = run_dirs[0] if run_dirs[0].is_dir() else run_dirs[0].parent
    out = Path(out_dir) if out_dir is not None else (first if len(run_dirs) == 1 else first.parent / "plots")
    out.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    keys: dict[str, None] = {}
    for ln in lines:
        for r in ln.runs:
            keys.update(dict.fromkeys(metric_keys(r)))
    eval_keys = [k for k in keys if k.startswith("eval/") and k != "eval/return_std" and k != "eval/episodes"]
    other = [k for k in keys if not k.startswith("eval/")]
    name = " vs ".join(ln.label for ln in lines) if len(lines) <= 3 else f"{len(lines)} runs"
    wall = _wall_unit(lines)
    pages = []
    summary = [("env_steps", k) for k in ("eval/return_mean", "eval/success_rate") if k in keys]
    summary += [("wall_s", "eval/return_mean")] if "eval/return_mean" in keys else []
    summary += [(x_key_for(k), k) for k in ("train/critic_loss", "train/return_mean") if k in keys][: 4 - len(summary)]
    if summary:
        pages.append(("summary.png", summary, f"{name}: summary"))
    if eval_keys:
        pages.append(("eval_vs_env_steps.png", [("env_steps", k) for k in eval_keys], f"{name}: vs env steps"))
        pages.append(("eval_vs_wall_s.png", [("wall_s", k) for k in eval_keys], f"{name}: vs wall-clock time"))
    for i in range(0, len(other), PANELS_PER_PAGE):
        part = other[i : i + PANELS_PER_PAGE]
        n = i // PANELS_PER_PAGE + 1
        fname = "train_vs_grad_steps.png" if n == 1 else f"train_vs_grad_steps_{n}.png"
        pages.append((fname, [(x_key_for(k), k) for k in part], f"{name}: training metrics ({n})"))
    paths = []
    for fname, panels, title in pages:
        fig = _page(plt, lines, panels, title, smooth, hlines, wall)
        if fig is None:
            continue
        try:
            paths.append(_save(fig, out / fname))
        finally:
            plt.close(fig)
    return paths


def plot_run(run_dir, out_dir=None, hlines: Optional[dict] = None, smooth: Optional[int] = None) -> list[Path]:
    """``plot_runs([run_dir], ...)``: the PNGs of one run, written into the run directory."""
    return plot_runs([run_dir], out_dir=out_dir, smooth=smooth, hlines=hlines)

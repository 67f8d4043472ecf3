"""Learning curves from a run's metrics.jsonl (matplotlib, Agg backend: no display needed).

``plot_run(run_dir)`` writes up to three PNGs:

- ``eval_vs_env_steps.png``: evaluation return (and success rate, where the env reports
  it) against env steps — the sample-efficiency view;
- ``eval_vs_wall_s.png``: the same against wall-clock seconds — the speed view;
- ``train_vs_grad_steps.png``: every training loss against gradient steps.
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from .logging import read_metrics, series

EVAL_KEYS = ("eval/return_mean", "eval/success_rate")
_MAX_LOSS_PANELS = 12


def _pyplot():
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError("plotting needs matplotlib: pip install 'amago_fast[plot]'") from e
    matplotlib.use("Agg", force=False)  # headless; keeps a backend the user already chose
    import matplotlib.pyplot as plt
    return plt


def _loss_keys(records: list[dict]) -> list[str]:
    keys: dict[str, None] = {}
    for r in records:
        for k, v in r.items():
            if ("loss" in k or k.startswith("train/")) and isinstance(v, (int, float)) \
                    and not isinstance(v, bool):
                keys.setdefault(k, None)
    return list(keys)[:_MAX_LOSS_PANELS]


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


def _panels(plt, records, x_key, y_keys, title, hlines):
    panels = [(k, series(records, x_key, k)) for k in y_keys]
    panels = [(k, xy) for k, xy in panels if xy[0]]
    if not panels:
        return None
    cols = min(len(panels), 3)
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
    for ax, (key, (xs, ys)) in zip(axes.flat, panels):
        ax.plot(xs, ys, marker="." if len(xs) < 50 else None, lw=1.4)
        refs = (hlines or {}).get(key, {})
        for (label, value), color in zip(refs.items(), ("gray", "tab:red", "tab:green")):
            ax.axhline(value, ls="--", lw=1, color=color, label=f"{label} ({value:g})")
        if refs:
            ax.legend(fontsize=8, loc="lower right")
        ax.set_xlabel(x_key)
        ax.set_title(key, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def plot_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
             hlines: dict[str, dict[str, float]] | None = None) -> list[Path]:
    """Write learning-curve PNGs for the run in ``run_dir``; returns their paths.

    Args:
        run_dir: a run directory holding metrics.jsonl (or the metrics file itself).
        out_dir: where the PNGs go (default: the run directory).
        hlines: reference lines per metric, e.g.
            ``{"eval/return_mean": {"Thompson sampling": 75.0}}``.
    Returns:
        the PNG paths written (empty if the log holds nothing plottable).
    """
    run_path = Path(run_dir)
    records = read_metrics(run_path)
    out = Path(out_dir) if out_dir is not None else (
        run_path if run_path.is_dir() else run_path.parent)
    out.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    name = run_path.name if run_path.is_dir() else run_path.parent.name
    eval_keys = [k for k in EVAL_KEYS if any(k in r for r in records)]
    jobs = [("env_steps", eval_keys, "eval_vs_env_steps.png"),
            ("wall_s", eval_keys, "eval_vs_wall_s.png"),
            ("grad_steps", _loss_keys(records), "train_vs_grad_steps.png")]
    paths = []
    for x_key, y_keys, filename in jobs:
        fig = _panels(plt, records, x_key, y_keys, f"{name}: vs {x_key}", hlines)
        if fig is None:
            continue
        try:
            paths.append(_save(fig, out / filename))
        finally:
            plt.close(fig)
    return paths

"""plot_run / plot_runs on synthetic metrics files: valid PNGs, every metric drawn, runs and
seeds overlaid, resumed logs de-duplicated, smoothing."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from amago_fast.logging import MetricsLogger
from amago_fast.plotting import plot_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _synthetic_run(run_dir, n=30, with_success=True):
    with MetricsLogger(run_dir) as log:
        for i in range(n):
            rec = {
                "env_steps": 100 * i,
                "grad_steps": 10 * i,
                "wall_s": 0.7 * i,
                "train/critic_loss": 1.0 / (i + 1),
                "train/actor_loss": -0.1 * i,
            }
            if i % 5 == 0:
                rec["eval/return_mean"] = 1 - math.exp(-i / 10)
                rec["eval/return_std"] = 0.1
                if with_success:
                    rec["eval/success_rate"] = min(1.0, i / 20)
            log.log(rec)


def _check_png(path):
    import matplotlib.image as mpimg

    assert path.read_bytes()[:8] == PNG_MAGIC
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert img.std() > 0  # not a blank canvas


def test_plot_run_writes_valid_pngs(tmp_path):
    run = tmp_path / "run"
    _synthetic_run(run)
    paths = plot_run(run, hlines={"eval/return_mean": {"baseline": 0.9}})
    names = sorted(p.name for p in paths)
    assert names == ["eval_vs_env_steps.png", "eval_vs_wall_s.png", "summary.png", "train_vs_grad_steps.png"]
    for p in paths:
        assert p.parent == run
        _check_png(p)
    assert not list(run.glob("*.tmp"))  # atomic writes leave nothing behind


def test_plot_run_out_dir_truncated_line_and_no_success(tmp_path):
    run = tmp_path / "run"
    _synthetic_run(run, with_success=False)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"env_steps": 9999, "eval/ret')  # crash mid-line
    out = tmp_path / "plots"
    paths = plot_run(run, out_dir=out)
    assert len(paths) == 4 and all(p.parent == out for p in paths)
    for p in paths:
        _check_png(p)


def test_plot_run_only_losses(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(
        "".join(json.dumps({"grad_steps": i, "train/loss": 1 / (i + 1)}) + "\n" for i in range(5))
    )
    paths = plot_run(run)
    assert [p.name for p in paths] == ["train_vs_grad_steps.png"]  # no eval, no critic loss: no summary
    _check_png(paths[0])


def test_plot_run_empty_and_missing(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    assert plot_run(tmp_path) == []
    with pytest.raises(FileNotFoundError):
        plot_run(tmp_path / "missing")


def test_every_metric_is_drawn_on_grouped_pages(tmp_path):
    """20 metrics: three pages of at most 9 panels, none dropped (the old cap was 12)."""
    import matplotlib.pyplot as plt

    from amago_fast import plotting

    run = tmp_path / "run"
    keys = [f"train/m{j:02d}" for j in range(20)]
    with MetricsLogger(run) as log:
        for i in range(10):
            log.log({"env_steps": i, "grad_steps": i, "wall_s": i, **{k: i * j for j, k in enumerate(keys)}})
    drawn = []
    real_draw = plotting._draw

    def spy(ax, lines, x_key, y_key, *a, **kw):
        drawn.append(y_key)
        return real_draw(ax, lines, x_key, y_key, *a, **kw)

    plotting._draw = spy
    try:
        paths = plot_run(run)
    finally:
        plotting._draw = real_draw
    assert [p.name for p in paths] == [
        "train_vs_grad_steps.png",
        "train_vs_grad_steps_2.png",
        "train_vs_grad_steps_3.png",
    ]
    assert drawn == keys
    plt.close("all")


def test_curve_keeps_the_last_record_of_a_repeated_step_and_sorts():
    from amago_fast.plotting import curve

    recs = [
        {"env_steps": 0, "y": 1.0},
        {"env_steps": 10, "y": 2.0},
        {"env_steps": 20, "y": 3.0},
        {"env_steps": 10, "y": 5.0},
        {"env_steps": 20, "y": None},
        {"env_steps": 30, "y": 7.0},
    ]
    xs, ys = curve(recs, "env_steps", "y")  # a resume re-logged step 10: no line drawn back
    assert xs.tolist() == [0.0, 10.0, 20.0, 30.0] and ys.tolist() == [1.0, 5.0, 3.0, 7.0]


def test_smooth_is_a_centred_moving_average():
    import numpy as np

    from amago_fast.plotting import smooth

    ys = np.array([0.0, 0.0, 3.0, 0.0, 0.0])
    assert smooth(ys, 1).tolist() == ys.tolist()
    assert np.allclose(smooth(ys, 3), [0.0, 1.0, 1.0, 1.0, 0.0])


def test_seeds_are_pooled_and_runs_overlaid(tmp_path):
    from amago_fast.plotting import _lines, plot_runs

    for name in ("a_s0", "a_s1", "b_s0"):
        _synthetic_run(tmp_path / name)
    lines = _lines([tmp_path / "a_s0", tmp_path / "a_s1", tmp_path / "b_s0"], None)
    assert [ln.label for ln in lines] == ["a (2 seeds)", "b"]
    xs, mean, _, band = lines[0].xy("env_steps", "eval/return_mean", 1)
    assert band is not None and np.allclose(band, 0.0)  # identical seeds: no spread
    paths = plot_runs([tmp_path / "a_s0", tmp_path / "a_s1", tmp_path / "b_s0"], smooth=2)
    assert all(p.parent == tmp_path / "plots" for p in paths) and len(paths) == 4
    for p in paths:
        _check_png(p)
    with pytest.raises(ValueError, match="labels"):
        plot_runs([tmp_path / "a_s0"], labels=["x", "y"])

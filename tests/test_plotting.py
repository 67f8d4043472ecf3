"""plot_run on a synthetic metrics file: the PNGs exist and are valid images."""
from __future__ import annotations

import json
import math

import pytest

from amago_fast.logging import MetricsLogger
from amago_fast.plotting import plot_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _synthetic_run(run_dir, n=30, with_success=True):
    with MetricsLogger(run_dir) as log:
        for i in range(n):
            rec = {"env_steps": 100 * i, "grad_steps": 10 * i, "wall_s": 0.7 * i,
                   "train/critic_loss": 1.0 / (i + 1), "train/actor_loss": -0.1 * i}
            if i % 5 == 0:
                rec["eval/return_mean"] = 1 - math.exp(-i / 10)
                if with_success:
                    rec["eval/success_rate"] = min(1.0, i / 20)
            log.log(rec)


def _check_png(path):
    import matplotlib.image as mpimg

    assert path.read_bytes()[:8] == PNG_MAGIC
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert img.std() > 0  # not a blank canvas


def test_plot_run_writes_three_valid_pngs(tmp_path):
    run = tmp_path / "run"
    _synthetic_run(run)
    paths = plot_run(run, hlines={"eval/return_mean": {"baseline": 0.9}})
    names = sorted(p.name for p in paths)
    assert names == ["eval_vs_env_steps.png", "eval_vs_wall_s.png", "train_vs_grad_steps.png"]
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
    assert len(paths) == 3 and all(p.parent == out for p in paths)
    for p in paths:
        _check_png(p)


def test_plot_run_only_losses(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(
        "".join(json.dumps({"grad_steps": i, "train/loss": 1 / (i + 1)}) + "\n"
                for i in range(5)))
    paths = plot_run(run)
    assert [p.name for p in paths] == ["train_vs_grad_steps.png"]
    _check_png(paths[0])


def test_plot_run_empty_and_missing(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    assert plot_run(tmp_path) == []
    with pytest.raises(FileNotFoundError):
        plot_run(tmp_path / "missing")

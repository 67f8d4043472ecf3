"""benchmarks/vs_amago_plot.py: curves of side-by-side runs from their results JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def vp():
    sys.path.insert(0, str(BENCH))
    import vs_amago_plot

    yield vs_amago_plot
    sys.path.remove(str(BENCH))


def _report(mode: str, seeds: list[int], solved_at: int) -> dict:
    def log(k: int) -> list[dict]:
        steps = range(512, 512 * (k + 1), 512)
        return [dict(env_steps=s, train_wall_s=s / 100, eval_return=min(1.0, s / (512 * k))) for s in steps]

    run = lambda seed: dict(seed=seed, raw={"amago": dict(log=log(solved_at)), "fast": dict(log=log(solved_at + 2))})
    return dict(mode=mode, settings=dict(task=mode, threshold=0.999), runs=[run(s) for s in seeds])


def test_plot_merges_files_and_writes_a_png(vp, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_report("tmaze", [0, 1], 6)))
    b.write_text(json.dumps(_report("tmaze", [1, 2], 8)))
    settings, runs = vp.load_runs([a, b])
    assert sorted(runs) == [0, 1, 2] and len(runs[1]["raw"]["amago"]["log"]) == 8  # b's seed 1 wins
    out = vp.main([str(a), str(b), "--out", str(tmp_path / "c.png")])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_median_holds_a_solved_run_at_its_last_value(vp):
    import numpy as np

    xs, ys = vp._median_curve([(np.array([1.0, 2.0]), np.array([0.0, 1.0])), (np.array([1.0, 2.0, 3.0]), np.zeros(3))])
    assert xs.tolist() == [1.0, 2.0, 3.0] and ys.tolist() == [0.0, 0.5, 0.5]


def test_plot_rejects_throughput_and_mixed_tasks(vp, tmp_path):
    t = tmp_path / "t.json"
    t.write_text(json.dumps(dict(mode="throughput", settings={}, runs=[])))
    with pytest.raises(ValueError, match="throughput has no curves"):
        vp.load_runs([t])
    a, d = tmp_path / "a.json", tmp_path / "d.json"
    a.write_text(json.dumps(_report("tmaze", [0], 4)))
    d.write_text(json.dumps(_report("dkd", [0], 4)))
    with pytest.raises(ValueError, match="task 'dkd'"):
        vp.load_runs([a, d])
    with pytest.raises(SystemExit):
        vp.main([str(tmp_path / "missing.json"), "--out", str(tmp_path / "x.png")])


def test_steps_to_threshold_per_seed(vp):
    runs = _report("tmaze", [3, 1], 6)["runs"]
    runs = {r["seed"]: r for r in runs}
    runs[3]["raw"]["fast"]["log"][-1]["eval_return"] = 0.5  # seed 3's fast run never gets there
    assert vp.steps_to_threshold(runs, "amago", 0.999) == [3072.0, 3072.0]  # solved at 512 x 6
    assert vp.steps_to_threshold(runs, "fast", 0.999) == [4096.0, None]  # seeds in order: 1, 3


def test_seed_ranges(vp):
    assert vp.seed_ranges([8, 0, 1, 2, 5, 7]) == "0-2, 5, 7-8"
    assert vp.seed_ranges([4]) == "4"

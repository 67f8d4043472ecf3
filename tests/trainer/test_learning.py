"""Issue 4's learning targets (slow: run with `pytest -m slow tests/trainer/test_learning.py`).

Wall-clock limits are the issue's (2-core CPU); they fail honestly on a slower or busier
machine. Presets: amago_fast.trainer.presets.
"""

import time

import pytest

from amago_fast.agent import AgentConfig
from amago_fast.trainer import Trainer, TrainerConfig
from amago_fast.trainer.presets import PRESETS

pytestmark = pytest.mark.slow


def _train_until(tmp_path, preset, key, target, minutes):
    tkw, akw = PRESETS[preset]
    tr = Trainer(tmp_path, TrainerConfig(**{**tkw, "progress": False}), AgentConfig(**akw))
    t0 = time.perf_counter()
    best = -float("inf")
    while tr.env_steps < tr.cfg.total_steps and time.perf_counter() - t0 < minutes * 60:
        tr.run(total_steps=min(tr.cfg.total_steps, tr.env_steps + tr.cfg.eval_every))
        best = max(best, tr.last_eval[key])
        if best >= target:
            break
    tr.close()
    return best, time.perf_counter() - t0


def test_tmaze_horizon_20_within_5_minutes(tmp_path):
    best, wall = _train_until(tmp_path, "tmaze20", "success_rate", 0.95, 5)
    assert best >= 0.95, f"best eval success {best} after {wall:.0f}s"


def test_tmaze_horizon_100_within_30_minutes(tmp_path):
    best, wall = _train_until(tmp_path, "tmaze100", "success_rate", 0.95, 30)
    assert best >= 0.95, f"best eval success {best} after {wall:.0f}s"


def test_bandit_5x100_reaches_95_percent_of_thompson_within_30_minutes(tmp_path):
    from amago_fast.envs.bandit import thompson_sampling_return

    baseline = thompson_sampling_return(5, 100, 2000, seed=0)
    best, wall = _train_until(tmp_path, "bandit5x100", "return_mean", 0.95 * baseline, 30)
    assert best >= 0.95 * baseline, f"best eval return {best} vs Thompson {baseline} after {wall:.0f}s"

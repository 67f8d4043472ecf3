"""Offline and offline-to-online runs through the Trainer and the CLI (--offline-data)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from amago_fast import AgentConfig, Trainer, TrainerConfig
from amago_fast.offline import record_dataset

H = 4
TINY = dict(
    d_model=32,
    n_heads=2,
    n_layers=1,
    d_ff=64,
    tstep_dim=16,
    tstep_hidden=32,
    head_hidden=32,
    dropout=0.0,
    online_coeff=0.0,
    offline_coeff=1.0,
    warmup=5,
)


def _walk_right(obs, tidx, rng):
    return np.where(rng.random(len(tidx)) < 0.2, rng.integers(0, 4, len(tidx)), 0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    d = tmp_path_factory.mktemp("data") / "tmaze"
    stats = record_dataset("tmaze", _walk_right, 24, d, num_envs=4, seed=3, env_args={"horizon": H})
    return d, stats


def _cfg(data, **kw):
    base = dict(
        env="tmaze",
        env_args={"horizon": H},
        num_envs=2,
        batch_size=8,
        eval_episodes=4,
        eval_envs=2,
        grad_steps_per_round=10,
        learning_starts=0,
        progress=False,
        offline_data=str(data),
        checkpoint_every=0,
    )
    base.update(kw)
    return TrainerConfig(**base)


def test_offline_only_run_trains_evaluates_and_checkpoints_without_an_env_step(tmp_path, dataset):
    data, stats = dataset
    tr = Trainer(tmp_path / "run", _cfg(data, total_steps=0, offline_steps=30), AgentConfig(**TINY))
    assert tr.buffer.num_trajectories == stats["episodes"]
    res = tr.run()
    assert tr.env_steps == 0 and tr.grad_steps == 30 and "return_mean" in res
    assert tr.last_checkpoint is not None and tr.last_checkpoint.exists()
    recs = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert recs[-1]["grad_steps"] == 30 and "eval/return_mean" in recs[-1]


def test_offline_to_online_keeps_the_dataset_and_adds_collected_trajectories(tmp_path, dataset):
    data, stats = dataset
    tr = Trainer(tmp_path / "run", _cfg(data, total_steps=40, offline_steps=10, collect_steps=10), AgentConfig(**TINY))
    tr.run()
    assert tr.env_steps >= 40 and tr.grad_steps > 10
    assert tr.buffer.num_trajectories > stats["episodes"]  # offline ones (protected) + online ones


def test_offline_steps_without_data_is_a_clear_error():
    with pytest.raises(ValueError, match="offline_data"):
        TrainerConfig(offline_steps=5)


def test_cli_offline_data_then_eval(tmp_path, dataset):
    data, _ = dataset
    run = tmp_path / "cli_run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "amago_fast",
        "train",
        "--env",
        "tmaze",
        "--env-arg",
        f"horizon={H}",
        "--offline-data",
        str(data),
        "--offline-steps",
        "12",
        "--total-steps",
        "0",
        "--run-dir",
        str(run),
        "--num-envs",
        "2",
        "--batch-size",
        "8",
        "--eval-episodes",
        "2",
        "--eval-envs",
        "2",
        "--no-progress",
        "--d-model",
        "32",
        "--n-heads",
        "2",
        "--n-layers",
        "1",
        "--d-ff",
        "64",
        "--online-coeff",
        "0",
        "--offline-coeff",
        "1",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    e = subprocess.run(
        [sys.executable, "-m", "amago_fast", "eval", "--run-dir", str(run), "--episodes", "4"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=str(tmp_path),
    )
    assert e.returncode == 0, e.stderr[-2000:]
    assert "return_mean" in json.loads(e.stdout.strip().splitlines()[-1])

"""MetricsLogger / read_metrics: JSONL records, crash tolerance, optional backends."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch

from amago_fast.logging import MetricsLogger, read_metrics, series


def test_records_are_json_lines_flushed_immediately(tmp_path):
    log = MetricsLogger(tmp_path / "run")
    log.log(
        {
            "env_steps": np.int64(10),
            "grad_steps": 2,
            "wall_s": np.float32(1.5),
            "train/loss": torch.tensor(0.25),
            "eval/success_rate": np.array(1.0),
            "flag": True,
            "name": "x",
            "hist": np.arange(3),
        }
    )
    # readable before close(): each line is flushed as written
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    assert rec == {
        "env_steps": 10,
        "grad_steps": 2,
        "wall_s": 1.5,
        "train/loss": 0.25,
        "eval/success_rate": 1.0,
        "flag": True,
        "name": "x",
        "hist": [0, 1, 2],
    }
    assert isinstance(rec["env_steps"], int)
    log.log({"env_steps": 20, "train/loss": float("nan")})
    log.close()
    log.close()  # idempotent
    recs = read_metrics(tmp_path / "run")
    assert len(recs) == 2 and recs[1]["train/loss"] is None  # strict JSON: NaN -> null
    with pytest.raises(ValueError, match="closed"):
        log.log({"a": 1})


def test_bad_records_raise_clear_errors(tmp_path):
    with MetricsLogger(tmp_path) as log:
        with pytest.raises(TypeError, match="dict"):
            log.log([1, 2])
        with pytest.raises(TypeError, match="keys must be str"):
            log.log({1: 2})
        with pytest.raises(TypeError, match="record\\['obj'\\]"):
            log.log({"obj": object()})
    with pytest.raises(TypeError, match="config"):
        MetricsLogger(tmp_path, config=[1])


def test_truncated_last_line_is_skipped_and_resume_starts_a_new_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"env_steps": 1, "x": 1}\n{"env_steps": 2, "x": 2}\n{"env_ste')
    recs = read_metrics(tmp_path)
    assert [r["env_steps"] for r in recs] == [1, 2]
    with MetricsLogger(tmp_path) as log:  # resume appends after the partial line
        log.log({"env_steps": 3, "x": 3})
    with pytest.warns(UserWarning, match="metrics.jsonl:3"):
        recs = read_metrics(path)
    assert [r["env_steps"] for r in recs] == [1, 2, 3]


def test_series_skips_missing_and_non_finite(tmp_path):
    recs = [
        {"env_steps": 1, "y": 1.0},
        {"env_steps": 2},
        {"env_steps": 3, "y": None},
        {"env_steps": 4, "y": 0.5},
        {"y": 2.0},
        {"env_steps": 5, "y": True},
    ]
    assert series(recs, "env_steps", "y") == ([1.0, 4.0], [1.0, 0.5])


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics"):
        read_metrics(tmp_path / "nope")


def test_tensorboard_asked_but_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match="amago_fast\\[tensorboard\\]"):
        MetricsLogger(tmp_path, tensorboard=True)
    assert not (tmp_path / "metrics.jsonl").exists()  # failed before opening anything


def test_wandb_asked_but_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ImportError, match="amago_fast\\[wandb\\]"):
        MetricsLogger(tmp_path, wandb=True)


@pytest.mark.skipif(
    importlib.util.find_spec("tensorboard") is None, reason="tensorboard not installed (optional extra)"
)
def test_tensorboard_writes_event_files(tmp_path):
    with MetricsLogger(tmp_path, tensorboard=True, config={"lr": 1e-3}) as log:
        log.log({"env_steps": 5, "eval/return_mean": 1.0})
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))

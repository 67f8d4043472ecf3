"""The examples run end to end (tiny settings in CI; learning checks marked slow)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cue_memory_dqn.py"


def _run(*args: str, timeout: int) -> tuple[str, float]:
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"OMP_NUM_THREADS": "1", **__import__("os").environ},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    m = re.search(r"success_rate ([0-9.]+)", out.stdout)
    assert m, out.stdout
    return out.stdout, float(m.group(1))


def test_example_smoke():
    stdout, success = _run("--steps", "50", "--corridor", "4", "--num-envs", "8", timeout=120)
    assert 0.0 <= success <= 1.0
    assert "td_loss" in stdout


@pytest.mark.slow
def test_example_learns_the_memory_task():
    _, success = _run("--steps", "400", "--corridor", "16", timeout=900)
    assert success >= 0.9  # a memoryless policy scores 0.5


CUSTOM_ENV = EXAMPLE.parent / "custom_env.py"


def _run_custom_env(tmp_path, steps: int, timeout: int) -> str:
    out = subprocess.run(
        [sys.executable, str(CUSTOM_ENV), str(tmp_path / "run"), str(steps)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        env={"OMP_NUM_THREADS": "1", **__import__("os").environ},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "one episode with load_policy: success" in out.stdout, out.stdout
    assert (tmp_path / "run" / "metrics.jsonl").exists()
    return out.stdout


def test_custom_env_example_smoke(tmp_path):
    """A user's own gymnasium env: register_env, a few hundred steps, then load_policy.predict."""
    stdout = _run_custom_env(tmp_path, 300, timeout=300)
    assert "success_rate" in stdout


@pytest.mark.slow
def test_custom_env_example_learns(tmp_path):
    stdout = _run_custom_env(tmp_path, 3000, timeout=900)
    assert float(re.search(r"'success_rate': ([0-9.]+)", stdout).group(1)) >= 0.9  # memoryless: 0.5

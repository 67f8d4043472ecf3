"""The standalone example runs end to end (tiny settings in CI; a learning check marked slow)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cue_memory_dqn.py"


def _run(*args: str, timeout: int) -> tuple[str, float]:
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, timeout=timeout,
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

"""benchmarks/families.py: the random baseline, one very short run and the RESULTS rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "families.py"


def _module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("families_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_random_policy_covers_each_action_kind():
    import gymnasium as gym

    fam = _module()
    for space, check in [
        (gym.spaces.Discrete(5), lambda a: a.shape == (3,) and set(a.tolist()) <= set(range(5))),
        (gym.spaces.Box(-2.0, 2.0, (4,)), lambda a: a.shape == (3, 4) and np.abs(a).max() <= 1.0),
        (gym.spaces.MultiBinary(6), lambda a: a.shape == (3, 6) and set(np.unique(a).tolist()) <= {0, 1}),
    ]:
        pol = fam.RandomPolicy(space, seed=0)
        actions, state = pol.get_actions(None, None, None, pol.init_state(3))
        assert state == 3 and check(actions), space


def test_short_run_writes_summary_curves_and_a_table_row(tmp_path):
    run = tmp_path / "mfl"
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "meta-frozen-lake", str(run), "--minutes", "0.01", "--episodes", "8"]
        + ["--set", "eval_every=400", "--set", "learning_starts=200", "--set", "eval_episodes=4"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    s = json.loads((run / "summary.json").read_text())
    assert s["env_steps"] >= 400 and s["grad_steps"] > 0  # one eval period at least
    assert s["overrides"] == {"eval_every": 400, "learning_starts": 200, "eval_episodes": 4}
    assert s["random"]["episodes"] == 8 and 0.0 <= s["random"]["success_rate"] <= 1.0
    assert s["final"]["episodes"] == 8
    assert any(p.suffix == ".png" for p in run.iterdir())
    row = _module().table([str(run)]).splitlines()[-1]
    assert row.startswith("| meta-frozen-lake (`meta-frozen-lake`, size=5") and f"{s['env_steps']:,}" in row

"""benchmarks/vs_amago.py: argument checks, and one very short side-by-side run.

Needs AMAGO's source (AMAGO_SRC). The T-Maze pair also needs an interpreter whose
gymnasium AMAGO's env wrappers support (<= 0.29): AMAGO_PYTHON, or this one if it qualifies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
AMAGO_SRC = os.environ.get("AMAGO_SRC")
pytestmark = pytest.mark.skipif(not AMAGO_SRC, reason="AMAGO_SRC is unset (path to AMAGO's source)")

TINY = [
    "d_model=16",
    "n_heads=2",
    "n_layers=1",
    "d_ff=32",
    "tstep_hidden=16",
    "tstep_dim=16",
    "head_hidden=16",
    "batch_size=4",
]
# a T-Maze a few updates long
TINY_TMAZE = [
    *TINY,
    "horizon=3",
    "max_seq_len=5",
    "parallel_envs=2",
    "steps_per_epoch_per_env=8",
    "updates_per_epoch=2",
    "eval_steps_per_env=4",
]


@pytest.fixture(scope="module")
def vs():
    sys.path.insert(0, str(BENCH))
    import vs_amago

    yield vs_amago
    sys.path.remove(str(BENCH))


def _amago_python() -> str | None:
    """An interpreter with gymnasium < 1 that imports AMAGO, or None."""
    for exe in (os.environ.get("AMAGO_PYTHON"), sys.executable):
        if not exe:
            continue
        r = subprocess.run(
            [exe, "-c", "import gymnasium, amago; print(gymnasium.__version__)"],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=AMAGO_SRC),
        )
        if r.returncode == 0 and int(r.stdout.strip().split(".")[0]) < 1:
            return exe
    return None


def test_bad_arguments_name_the_argument(vs, tmp_path):
    with pytest.raises(SystemExit, match="bogus"):
        vs._parse_set(["bogus=1"])
    with pytest.raises(SystemExit, match="horizon"):
        vs._parse_set(["horizon=abc"])
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        vs._parse_set(["horizon"])
    with pytest.raises(ValueError, match="task"):
        vs.Settings(task="maze").check()
    with pytest.raises(ValueError, match="eval_steps_per_env"):
        vs.Settings(task="tmaze", horizon=20, eval_steps_per_env=5).check()
    with pytest.raises(SystemExit):
        vs.main(["tmaze", "--seeds", "0", "--out", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit):
        vs.main(["tmaze", "--first-seed", "-1", "--out", str(tmp_path / "x.json")])
    assert vs._parse_set(["horizon=7", "lr=0.5"]) == {"horizon": 7, "lr": 0.5}
    # bool("False") would be True: booleans are read as words
    assert vs._parse_set(["warmup_from_zero=False", "tstep_input_norm=no"]) == {
        "warmup_from_zero": False,
        "tstep_input_norm": False,
    }
    assert vs._parse_set(["warmup_from_zero=1"]) == {"warmup_from_zero": True}
    with pytest.raises(SystemExit, match="warmup_from_zero"):
        vs._parse_set(["warmup_from_zero=maybe"])


def test_fast_only_settings_default_to_amagos_behaviour(vs):
    """Side by side means equal settings: amago_fast's switches for AMAGO's update quirks
    default to what AMAGO always does, which are also the library's own defaults."""
    from amago_fast.agent import AgentConfig

    s, cfg = vs.Settings(), AgentConfig()
    assert (s.dpg_critics, s.warmup_from_zero) == ("amago", True)
    assert (cfg.dpg_critics, cfg.warmup_from_zero) == (s.dpg_critics, s.warmup_from_zero)


def test_throughput_pair_runs_pinned_and_reports(vs, tmp_path, capsys):
    out = tmp_path / "tp.json"
    rep = vs.main(
        [
            "throughput",
            "--budget-s",
            "1",
            "--out",
            str(out),
            "--work-dir",
            str(tmp_path / "w"),
            "--amago-python",
            sys.executable,
            "--set",
            *TINY,
            "max_seq_len=8",
        ]
    )
    saved = json.loads(out.read_text())
    run = saved["runs"][0]
    for system in ("amago", "fast"):
        final = run["raw"][system]["final"]
        assert final is not None, f"{system} worker wrote no final record"
        assert final["updates"] > 0 and final["torch_threads"] == 1
        assert final["cpus"] == [run["cores"][system]]  # pinned to its own core
    assert run["ratio_fast_over_amago"] == pytest.approx(run["fast"] / run["amago"])
    flops = run["flops_per_update"]
    assert flops["amago"] > 0 and flops["fast"] > 0
    assert run["flops_ratio_amago_over_fast"] == pytest.approx(flops["amago"] / flops["fast"])
    assert rep["settings"]["d_model"] == 16
    for system in ("amago", "fast"):  # the dense math alone is faster than the whole update
        assert 0 < run["dense_floor_s"][system] < 1 / run[system]
    printed = capsys.readouterr().out
    assert "fast / AMAGO" in printed and "GFLOP per update" in printed and "dense-math floor" in printed


def test_flop_count_covers_cpu_flash_attention(vs):
    """PyTorch's FlopCounterMode skips the CPU flash-attention ops; the worker's formulas
    count them as the explicit matmul attention (AMAGO's, on CPU) is counted."""
    import torch
    import torch.nn.functional as F
    from vs_amago_worker import count_update_flops

    B, H, L, D = 2, 3, 7, 5
    q, k, v = (torch.randn(B, H, L, D, requires_grad=True) for _ in range(3))

    def sdpa(_):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    def explicit(_):
        s = (q @ k.transpose(-1, -2)).masked_fill(~torch.ones(L, L, dtype=torch.bool).tril(), float("-inf"))
        return s.softmax(-1) @ v

    with torch.no_grad():
        assert count_update_flops(sdpa) == count_update_flops(explicit) == 4 * B * H * L * L * D
    both = count_update_flops(lambda i: sdpa(i).sum().backward())
    assert both > 4 * B * H * L * L * D  # the backward is counted too


def test_mean_return_is_taken_over_the_env_steps_both_ran(vs):
    log = lambda pairs: [dict(env_steps=e, updates=0, train_wall_s=0.0, eval_return=r) for e, r in pairs]  # noqa: E731
    res = {
        "amago": dict(final=dict(env_steps=300), log=log([(0, 9.0), (100, 1.0), (200, 2.0), (300, 3.0)])),
        "fast": dict(final=dict(env_steps=200), log=log([(0, 9.0), (100, 2.0), (200, 4.0)])),
    }
    row = vs.summarize_learning(res)
    assert row["common_env_steps"] == 200  # the untrained evaluation at 0 and AMAGO's 300 are left out
    assert row["amago"]["mean_return_common"] == 1.5 and row["fast"]["mean_return_common"] == 3.0
    assert row["mean_return_common_fast_minus_amago"] == 1.5


def test_dense_floor_replays_each_matmul_of_the_step(vs):
    import torch
    from vs_amago_worker import dense_floor

    a, b = torch.randn(64, 32), torch.randn(32, 48, requires_grad=True)
    bias = torch.randn(48)

    def step(_):
        (torch.addmm(bias, a, b).relu().sum() + (a @ b).relu().sum()).backward()

    out = dense_floor(step)
    # forward addmm and mm (one shape each), and b's gradient a^T @ g twice (one shape)
    assert out["dense_calls"] == 4 and out["distinct_calls"] == 3
    assert 0 < out["floor_s"] < 1


@pytest.mark.slow  # two AMAGO/amago_fast start-ups and a few epochs: ~1-2 minutes on 2 shared cores
def test_tmaze_pair_counts_the_same_schedule(vs, tmp_path):
    exe = _amago_python()
    if exe is None:
        pytest.skip("no interpreter with AMAGO and gymnasium <= 0.29 (set AMAGO_PYTHON)")
    out = tmp_path / "tm.json"
    vs.main(
        [
            "tmaze",
            "--seeds",
            "1",
            "--budget-s",
            "4",
            "--out",
            str(out),
            "--work-dir",
            str(tmp_path / "w"),
            "--amago-python",
            exe,
            "--set",
            *TINY_TMAZE,
        ]
    )
    run = json.loads(out.read_text())["runs"][0]
    logs = {k: run["raw"][k]["log"] for k in ("amago", "fast")}
    for system, log in logs.items():
        final = run["raw"][system]["final"]
        assert final is not None and final["env_steps"] > 0, system
        trained = [r for r in log if r["env_steps"] > 0]
        assert trained, f"{system}: no evaluation after training"
        for r in trained:  # 2 envs x 8 steps per epoch, 2 updates per epoch on both sides
            assert r["env_steps"] % 16 == 0 and r["updates"] == 2 * (r["env_steps"] // 16), (system, r)
    assert set(run["ratio_fast_over_amago"]) == {
        "updates_per_s",
        "env_steps_per_s",
        "steps_to_threshold",
        "wall_to_threshold",
    }


def test_nudge_moves_weights_by_rounding_only_and_repeats(vs):
    import torch
    from vs_amago_worker import nudge

    base = [torch.randn(64, 32), torch.randn(32)]
    a, b, c = ([t.clone() for t in base] for _ in range(3))
    nudge(a, 3), nudge(b, 3), nudge(c, -1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))  # the same seed, the same nudge
    assert all(torch.equal(x, y) for x, y in zip(c, base))  # -1: off
    rel = max(((x - y).abs() / y.abs().clamp_min(1e-30)).max().item() for x, y in zip(a, base))
    assert 0 < rel < 2.0**-24 * 8  # a few ulps at most


def _worker_run(exe: str, system: str, settings: dict, tmp_path: Path, tag: str, hash_seed: str) -> dict:
    """One worker process on `settings`; -> its final record, plus its log as "log"."""
    path, out = tmp_path / f"{tag}.json", tmp_path / f"{tag}.jsonl"
    path.write_text(json.dumps(settings))
    env = dict(os.environ, PYTHONHASHSEED=hash_seed, WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (AMAGO_SRC, env.get("PYTHONPATH")) if p)
    r = subprocess.run(
        [exe, str(BENCH / "vs_amago_worker.py"), system, str(path), str(out)], env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    final = recs[-1]["final"]
    final["log"] = [(r["env_steps"], r["updates"], r["eval_return"]) for r in recs[:-1]]
    return final


def test_one_seed_is_one_run_on_both_sides(vs, tmp_path):
    """With `repeatable` (the default) a seed pins a run: two AMAGO runs of seed 1 under
    different string hashing end with the same weights, as two amago_fast runs do. As
    shipped (repeatable=False) AMAGO's unseeded exploration parts them."""
    exe = _amago_python()
    if exe is None:
        pytest.skip("no interpreter with AMAGO and gymnasium <= 0.29 (set AMAGO_PYTHON)")
    settings = dict(vs._parse_set(TINY_TMAZE), task="tmaze", max_env_steps=64, budget_s=300.0, seed=1)
    runs = {
        (system, hs): _worker_run(
            exe if system == "amago" else sys.executable, system, settings, tmp_path, f"{system}{hs}", hs
        )
        for system in ("amago", "fast")
        for hs in ("1", "2")
    }
    for system in ("amago", "fast"):
        a, b = runs[(system, "1")], runs[(system, "2")]
        assert a["env_steps"] == 64 and a["updates"] == 8, (system, a)
        assert a["weights"] == b["weights"] and a["log"] == b["log"], system
    shipped = _worker_run(exe, "amago", dict(settings, repeatable=False), tmp_path, "shipped", "1")
    assert shipped["weights"] != runs[("amago", "1")]["weights"]


def test_trajectory_files_sort_by_save_time(vs):
    from vs_amago_worker import _saved_at

    names = ["/r/TMaze_ff00aa11_1700000000.25.traj", "/r/TMaze_00aa11ff_1700000000.5.npz", "/r/TMaze_9b_999.0.traj"]
    assert sorted(names, key=_saved_at) == [names[2], names[0], names[1]]

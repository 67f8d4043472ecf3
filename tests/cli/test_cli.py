import json
import os
import subprocess
import sys

import pytest

from amago_fast.cli import build_parser, parse_env_arg

TINY = {
    "trainer": {
        "num_envs": 2,
        "collect_steps": 8,
        "grad_steps_per_round": 2,
        "learning_starts": 16,
        "batch_size": 4,
        "eval_every": 32,
        "eval_episodes": 2,
        "eval_envs": 2,
        "checkpoint_every": 32,
    },
    "agent": {
        "d_model": 16,
        "n_heads": 2,
        "n_layers": 1,
        "d_ff": 32,
        "tstep_dim": 8,
        "tstep_hidden": 16,
        "head_hidden": 16,
    },
}


def _run(*args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "amago_fast", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def test_cli_train_resume_eval_plot_smoke(tmp_path):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    run = tmp_path / "run"
    r = _run(
        "train",
        "--env",
        "tmaze",
        "--env-arg",
        "horizon=3",
        "--total-steps",
        "32",
        "--run-dir",
        str(run),
        "--config",
        str(cfg),
        "--seed",
        "1",
        "--no-progress",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["env_steps"] == 32
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"env_steps", "grad_steps", "wall_s", "eval/return_mean", "eval/success_rate"} <= recs[-1].keys()
    saved = json.loads((run / "config.json").read_text())
    assert saved["trainer"]["env_args"] == {"horizon": 3} and saved["agent"]["d_model"] == 16

    r = _run("train", "--run-dir", str(run), "--resume", "--total-steps", "64", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert recs[-1]["env_steps"] == 64

    r = _run("eval", "--run-dir", str(run), "--episodes", "3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert out["episodes"] == 3 and 0.0 <= out["success_rate"] <= 1.0 and "return_mean" in out

    pytest.importorskip("matplotlib")
    r = _run("plot", str(run), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    pngs = [p for p in r.stdout.split() if p.endswith(".png")]
    assert pngs and all(os.path.exists(p) for p in pngs)


def test_cli_refuses_to_overwrite_a_run_and_bad_args(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    r = _run("train", "--run-dir", str(run), cwd=tmp_path)
    assert r.returncode != 0 and "--resume" in r.stderr
    r = _run("eval", "--run-dir", str(tmp_path / "missing"), cwd=tmp_path)
    assert r.returncode != 0 and "config.json" in r.stderr


def test_env_arg_parsing():
    assert parse_env_arg("horizon=20") == ("horizon", 20)
    assert parse_env_arg("penalty=-0.5") == ("penalty", -0.5)
    assert parse_env_arg("name=abc") == ("name", "abc")
    args = build_parser().parse_args(["train", "--run-dir", "x", "--env-arg", "arms=5", "--env-arg", "pulls=100"])
    assert dict(args.env_arg) == {"arms": 5, "pulls": 100}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--run-dir", "x", "--env-arg", "novalue"])


def test_cli_mazerunner_with_relabeling_smoke(tmp_path):
    """--relabel some on mazerunner: the buffer samples through the relabeler, the policy
    never sees the hidden `achieved` key, and the run resumes with relabeling restored."""
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    run = tmp_path / "mr"
    r = _run(
        "train",
        "--env",
        "mazerunner",
        "--env-arg",
        "size=5",
        "--env-arg",
        "goals=2",
        "--env-arg",
        "horizon=8",
        "--relabel",
        "some",
        "--total-steps",
        "32",
        "--run-dir",
        str(run),
        "--config",
        str(cfg),
        "--no-progress",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    saved = json.loads((run / "config.json").read_text())
    assert saved["trainer"]["relabel"] == "some"
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert recs[-1]["grad_steps"] > 0
    r = _run("train", "--run-dir", str(run), "--resume", "--total-steps", "48", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    recs2 = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert recs2[-1]["env_steps"] >= 48 and recs2[-1]["grad_steps"] > recs[-1]["grad_steps"]
    # what the resumed run trains with: relabeling restored, the hidden key kept from the policy
    from amago_fast.relabel import MultiGoalRelabeler
    from amago_fast.trainer import Trainer

    tr = Trainer(run, resume=True)
    try:
        assert isinstance(tr.buffer.relabeler, MultiGoalRelabeler)
        assert "achieved" in tr.env.observation_space.spaces
        assert "achieved" not in tr.agent.obs_space.spaces and "achieved" not in tr.agent.tstep.keys
    finally:
        close = getattr(tr, "close", None)
        if close:
            close()


def test_trainer_builds_the_policy_without_hidden_keys_and_relabels(tmp_path):
    from amago_fast.agent import AgentConfig
    from amago_fast.relabel import MultiGoalRelabeler
    from amago_fast.trainer import Trainer, TrainerConfig

    tcfg = TrainerConfig.from_dict(
        {
            **TINY["trainer"],
            "env": "mazerunner",
            "env_args": {"size": 5, "goals": 2},
            "relabel": "all",
            "progress": False,
        }
    )
    tr = Trainer(tmp_path / "run", tcfg, AgentConfig(**TINY["agent"]))
    assert "achieved" in tr.env.observation_space.spaces
    assert "achieved" not in tr.env.policy_observation_space.spaces
    assert isinstance(tr.buffer.relabeler, MultiGoalRelabeler)

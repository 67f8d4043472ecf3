"""Checkpoints under faults: resume scans for the newest complete one or refuses, temp
leftovers are swept, non-finite weights are never written nor allowed to prune."""

import json
import shutil

import pytest
import torch

from amago_fast.agent import AgentConfig
from amago_fast.trainer import NonFiniteWeightsError, ResumeError, Trainer, TrainerConfig, latest_checkpoint
from amago_fast.trainer.checkpoint import complete_checkpoints, save_checkpoint, sweep_temp, write_json_atomic

AGENT = dict(
    d_model=16, n_heads=2, n_layers=1, d_ff=32, tstep_dim=8, tstep_hidden=16, head_hidden=16, dropout=0.0, warmup=5
)


def _cfg(**kw):
    base = dict(
        env="tmaze",
        env_args={"horizon": 4},
        num_envs=2,
        total_steps=96,
        collect_steps=8,
        grad_steps_per_round=1,
        learning_starts=32,
        batch_size=4,
        eval_every=0,
        eval_episodes=2,
        eval_envs=2,
        checkpoint_every=32,
        checkpoint_interval_s=0,
        keep_checkpoints=5,
        progress=False,
        seed=3,
    )
    base.update(kw)
    return TrainerConfig(**base)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One short run with checkpoints at 32 (first update), 64 and 96; copied per test."""
    run = tmp_path_factory.mktemp("run") / "r"
    tr = Trainer(run, _cfg(), AgentConfig(**AGENT))
    tr.run()
    tr.close()
    return run


@pytest.fixture
def run(finished_run, tmp_path):
    dst = tmp_path / "r"
    shutil.copytree(finished_run, dst)
    return dst


def _steps(run):
    return [int(p.name.split("_")[1]) for p in complete_checkpoints(run / "checkpoints")]


def _resume_step(run):
    tr = Trainer(run, resume=True)
    try:
        return tr.env_steps
    finally:
        tr.close()


def test_the_run_has_three_checkpoints(run):
    assert _steps(run) == [32, 64, 96]
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["checkpoint"] == "step_0000000096"


def test_resume_without_latest_json_scans_for_the_newest(run):
    (run / "checkpoints" / "latest.json").unlink()
    assert _resume_step(run) == 96


def test_resume_when_latest_json_is_stale_or_names_a_missing_checkpoint(run):
    # a kill between renaming step_96 into place and rewriting latest.json
    write_json_atomic(run / "checkpoints" / "latest.json", {"checkpoint": "step_0000000064"})
    assert _resume_step(run) == 96
    write_json_atomic(run / "checkpoints" / "latest.json", {"checkpoint": "step_0000000999"})
    assert _resume_step(run) == 96


@pytest.mark.parametrize("damage", ["truncate_weights", "drop_state", "bad_state_json", "empty_optimizer"])
def test_an_incomplete_newest_checkpoint_falls_back_to_the_previous(run, damage):
    newest = run / "checkpoints" / "step_0000000096"
    if damage == "truncate_weights":
        w = newest / "weights.safetensors"
        w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    elif damage == "drop_state":
        (newest / "state.json").unlink()
    elif damage == "bad_state_json":
        (newest / "state.json").write_text('{"env_steps": 9')
    else:
        (newest / "optimizer.safetensors").write_bytes(b"")
    assert latest_checkpoint(run / "checkpoints").name == "step_0000000064"
    assert _resume_step(run) == 64


def test_resume_with_no_complete_checkpoint_refuses_and_touches_nothing(run):
    for p in complete_checkpoints(run / "checkpoints"):
        (p / "weights.safetensors").unlink()
    before = (run / "metrics.jsonl").read_bytes()
    with pytest.raises(ResumeError, match="no complete checkpoint") as e:
        Trainer(run, resume=True)
    assert "\n" not in str(e.value)
    assert (run / "metrics.jsonl").read_bytes() == before


def test_resume_drops_metrics_written_after_its_checkpoint(run):
    shutil.rmtree(run / "checkpoints" / "step_0000000096")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert max(json.loads(l)["env_steps"] for l in lines) == 96
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"env_steps": 100, "grad_ste')  # a kill mid-line
    tr = Trainer(run, resume=True)
    recs = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert recs and max(r["env_steps"] for r in recs) == 64
    tr.run()
    tr.close()
    steps = [json.loads(l)["env_steps"] for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 96  # no line goes back in time


def test_killed_writers_leftovers_are_swept_on_start(run):
    ck = run / "checkpoints"
    (ck / ".step_0000000128.abcd1234" / "replay").mkdir(parents=True)
    (ck / ".step_0000000128.abcd1234" / "weights.safetensors").write_bytes(b"partial")
    (ck / "latest.json.x1y2.tmp").write_text("{")
    tr = Trainer(run, resume=True)
    tr.close()
    assert not [p.name for p in ck.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]
    assert sweep_temp(ck) == []


class _Agent:
    """The parts of Agent that save_checkpoint uses."""

    def __init__(self, value=0.0):
        self.net = torch.nn.Linear(3, 2)
        torch.nn.init.constant_(self.net.weight, value)
        self.optimizer = torch.optim.AdamW(self.net.parameters())
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: 1.0)
        self.grad_steps = 0

    def state_dict(self):
        return self.net.state_dict()

    def carried_grads(self):
        return {}


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_and_prune_nothing(tmp_path, bad):
    save_checkpoint(tmp_path, "step_0000000001", _Agent(), {}, keep=2)
    save_checkpoint(tmp_path, "step_0000000002", _Agent(), {}, keep=2)
    agent = _Agent()
    with torch.no_grad():
        agent.net.bias[1] = bad
    with pytest.raises(NonFiniteWeightsError, match="bias"):
        save_checkpoint(tmp_path, "step_0000000003", agent, {}, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "step_0000000001", "step_0000000002"]
    assert json.loads((tmp_path / "latest.json").read_text())["checkpoint"] == "step_0000000002"


def test_pruning_counts_only_complete_checkpoints(tmp_path):
    save_checkpoint(tmp_path, "step_0000000001", _Agent(), {}, keep=2)
    (tmp_path / "step_0000000005").mkdir()  # incomplete (no files): never counts as kept
    save_checkpoint(tmp_path, "step_0000000002", _Agent(), {}, keep=2)
    save_checkpoint(tmp_path, "step_0000000003", _Agent(), {}, keep=2)
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["step_0000000002", "step_0000000003"]


def test_a_failed_write_leaves_no_temp_files(tmp_path):
    def broken_replay(path):
        path.mkdir()
        (path / "half").write_bytes(b"x")
        raise OSError(27, "File too large")

    save_checkpoint(tmp_path, "step_0000000001", _Agent(), {}, keep=2)
    with pytest.raises(OSError, match="too large"):
        save_checkpoint(tmp_path, "step_0000000002", _Agent(), {}, save_replay=broken_replay)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "step_0000000001"]
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "x.json", {"a": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "step_0000000001"]

"""Runs always leave something to evaluate: checkpoints after the first update, at the end,
on a time interval and on SIGINT/SIGTERM; callbacks; an ETA that counts learning."""

import json
import os
import signal

import pytest

from amago_fast.agent import Agent
from amago_fast.trainer import Callback, Trainer, TrainingInterrupted, evaluate, latest_checkpoint, load_weights
from amago_fast.trainer.progress import Eta, format_seconds, work_left


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_train_start(self, trainer):
        self.calls.append(("start", trainer.env_steps))

    def on_step(self, trainer, record):
        self.calls.append(("step", record["env_steps"]))

    def on_eval(self, trainer, result):
        self.calls.append(("eval", trainer.env_steps, result["episodes"]))

    def on_checkpoint(self, trainer, path):
        self.calls.append(("ckpt", path.name))

    def on_train_end(self, trainer):
        self.calls.append(("end", trainer.env_steps))


def _ckpts(run):
    return sorted(p.name for p in (run / "checkpoints").iterdir() if p.is_dir())


def test_callbacks_see_every_round_eval_and_checkpoint(tmp_path, tiny_configs):
    cfg, acfg = tiny_configs(total_steps=64, eval_every=32, checkpoint_every=0, checkpoint_interval_s=0)
    rec = Recorder()
    tr = Trainer(tmp_path, cfg, acfg, callbacks=[rec])
    tr.run()
    tr.close()
    kinds = [c[0] for c in rec.calls]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert [c[1] for c in rec.calls if c[0] == "step"] == [16, 32, 48, 64]
    assert [c[1] for c in rec.calls if c[0] == "eval"] == [32, 64]
    # checkpoint_every=0: still one after the first update (step 32) and one at the end
    assert [c[1] for c in rec.calls if c[0] == "ckpt"] == ["step_0000000032", "step_0000000064"]


def test_callbacks_are_checked():
    with pytest.raises(TypeError, match=r"callbacks\[0\]"):
        Trainer("unused", callbacks=[object()])


def test_stop_from_a_callback_checkpoints_and_returns(tmp_path, tiny_configs):
    cfg, acfg = tiny_configs(total_steps=10_000, checkpoint_every=0, checkpoint_interval_s=0, eval_every=0)

    class StopAt48(Callback):
        def on_step(self, trainer, record):
            if record["env_steps"] >= 48:
                trainer.stop()

    tr = Trainer(tmp_path, cfg, acfg, callbacks=[StopAt48()])
    tr.run()
    tr.close()
    assert tr.env_steps == 48 and latest_checkpoint(tmp_path / "checkpoints").name == "step_0000000048"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_a_checkpoint_that_eval_can_use(tmp_path, tiny_configs, sig, capsys):
    cfg, acfg = tiny_configs(total_steps=10_000, checkpoint_every=0, checkpoint_interval_s=0, eval_every=0)

    class Signal(Callback):
        def on_step(self, trainer, record):
            if record["env_steps"] == 48:
                os.kill(os.getpid(), sig)  # as Ctrl-C / kill would, between two rounds

    before = signal.getsignal(sig)
    tr = Trainer(tmp_path, cfg, acfg, callbacks=[Signal()])
    with pytest.raises(TrainingInterrupted) as e:
        tr.run()
    assert signal.getsignal(sig) is before  # handlers restored
    assert e.value.env_steps == 48 and e.value.signal_name == sig.name
    assert str(e.value) == f"interrupted at step 48; checkpoint saved to {tmp_path / 'checkpoints' / 'step_0000000048'}"
    assert "saving a checkpoint" in capsys.readouterr().err
    ckpt = latest_checkpoint(tmp_path / "checkpoints")
    assert ckpt.name == "step_0000000048"
    saved = json.loads((tmp_path / "config.json").read_text())
    from amago_fast.agent import AgentConfig

    agent = Agent(tr.env.policy_observation_space, tr.env.action_space, AgentConfig.from_dict(saved["agent"]))
    load_weights(agent, ckpt)
    assert evaluate(agent, "tmaze", {"horizon": 4}, episodes=2, num_envs=2, seed=0)["episodes"] == 2
    tr.close()
    again = Trainer(tmp_path, resume=True)
    assert again.env_steps == 48 and again.grad_steps == tr.grad_steps
    again.close()


def test_time_interval_checkpoints(tmp_path, tiny_configs):
    cfg, acfg = tiny_configs(
        total_steps=64,
        checkpoint_every=0,
        checkpoint_interval_s=1e-6,
        eval_every=0,
        keep_checkpoints=10,
        learning_starts=10_000,
    )  # no update: only the clock
    rec = Recorder()
    tr = Trainer(tmp_path, cfg, acfg, callbacks=[rec])
    tr.run()
    tr.close()
    assert [c[1] for c in rec.calls if c[0] == "ckpt"] == [f"step_{s:010d}" for s in (16, 32, 48, 64)]


def test_checkpoint_interval_is_validated():
    from amago_fast.trainer import TrainerConfig

    with pytest.raises(ValueError, match="checkpoint_interval_s"):
        TrainerConfig(checkpoint_interval_s=-1)
    with pytest.raises(ValueError, match="nonfinite"):
        TrainerConfig(nonfinite="ignore")


def test_skipped_updates_are_counted_and_logged(tmp_path, tiny_configs):
    cfg, acfg = tiny_configs(total_steps=64, grad_steps_per_round=4, eval_every=0)
    tr = Trainer(tmp_path, cfg, acfg)
    real = tr.agent.train_step
    calls = [0]

    def every_third_skipped(batch):
        out = real(batch)
        calls[0] += 1
        out["train/skipped_nonfinite"] = 1.0 if calls[0] % 3 == 0 else 0.0
        return out

    tr.agent.train_step = every_third_skipped
    tr.run()
    tr.close()
    assert calls[0] == 12 and tr.skipped_updates == 4
    recs = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("train/skipped_updates") for r in recs] == [None, 1, 2, 4]
    state = json.loads((latest_checkpoint(tmp_path / "checkpoints") / "state.json").read_text())
    assert state["skipped_updates"] == 4


def test_eta_counts_learning_not_only_collection():
    eta = Eta(alpha=1.0)
    eta.observe("collect", 1.0, 100)  # 0.01 s per env step
    left = work_left(
        env_steps=1_000,
        total=11_000,
        steps_per_round=100,
        learning_starts=2_000,
        grad_steps_per_round=10,
        eval_every=5_000,
    )
    assert left == {"collect": 10_000, "learn": 900, "eval": 3}  # at 5k, 10k and the end
    assert eta.remaining(**left) is None  # learning not timed yet: no made-up number
    eta.observe("learn", 5.0, 10)  # 0.5 s per gradient step
    eta.observe("eval", 3.0, 1)
    assert eta.remaining(**left) == pytest.approx(100 + 450 + 9)
    assert format_seconds(559) == "9:19" and format_seconds(3723) == "1:02:03" and format_seconds(None) == "?"
    # tqdm's own estimate from the collection phase would say 100 s: 5.6x too short


def test_progress_bar_shows_the_eta(tmp_path, tiny_configs, capsys):
    cfg, acfg = tiny_configs(total_steps=64, progress=True, eval_every=0)
    tr = Trainer(tmp_path, cfg, acfg)
    tr.run()
    tr.close()
    err = capsys.readouterr().err
    assert "eta=" in err and "remaining" not in err

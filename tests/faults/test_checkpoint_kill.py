"""kill -9 at seeded points inside checkpoint writes: the next start sweeps the temp
leftovers and resumes from the newest complete checkpoint, then trains to the end."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from amago_fast.trainer import Trainer
from amago_fast.trainer.checkpoint import complete_checkpoints

CHILD = textwrap.dedent("""
    import os, signal, sys
    from amago_fast.agent import AgentConfig
    from amago_fast.trainer import Callback, Trainer, TrainerConfig

    run_dir, kill_at = sys.argv[1], int(sys.argv[2])
    cfg = TrainerConfig(env="tmaze", env_args={"horizon": 4}, num_envs=2, total_steps=96, collect_steps=8,
                        grad_steps_per_round=1, learning_starts=32, batch_size=4, eval_every=0, eval_episodes=2,
                        eval_envs=2, checkpoint_every=32, checkpoint_interval_s=0, keep_checkpoints=2,
                        progress=False, seed=3)
    acfg = AgentConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, tstep_dim=8, tstep_hidden=16,
                       head_hidden=16, dropout=0.0, warmup=5)
    ops = [0]
    armed = [False]

    class Arm(Callback):  # count file operations only after the first checkpoint is committed
        def on_checkpoint(self, trainer, path):
            armed[0] = True

    def counted(fn):
        def wrapper(*a, **k):
            if armed[0]:
                ops[0] += 1
                if ops[0] == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return fn(*a, **k)
        return wrapper

    os.replace, os.fsync, os.rename = counted(os.replace), counted(os.fsync), counted(os.rename)
    tr = Trainer(run_dir, cfg, acfg, callbacks=[Arm()])
    tr.run()
    print("finished after", ops[0], "file operations")
""")

# One checkpoint of this run makes 29 counted operations (fsyncs and renames of the replay
# snapshot, weights, optimizer, state.json, the checkpoint dir, latest.json): two seeded
# points over the next two checkpoints, and 28: after the checkpoint's rename, before
# latest.json is replaced (latest.json then names the previous checkpoint).
KILL_POINTS = sorted(np.random.default_rng(2026).choice(np.arange(1, 59), size=2, replace=False).tolist() + [28])


@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_sigkill_during_checkpoint_writes_then_resume(tmp_path, kill_at):
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.run(
        [sys.executable, "-c", CHILD, str(run), str(kill_at)], capture_output=True, text=True, timeout=300, env=env
    )
    assert p.returncode == -signal.SIGKILL, (p.returncode, p.stdout, p.stderr[-2000:])
    done = complete_checkpoints(run / "checkpoints")
    assert done, "the first checkpoint was committed before any kill point"
    newest = int(done[-1].name.split("_")[1])
    if kill_at == 28:  # the scenario of issue 10 D: latest.json still names the previous one
        assert json.loads((run / "checkpoints" / "latest.json").read_text())["checkpoint"] != done[-1].name

    tr = Trainer(run, resume=True)
    assert tr.env_steps == newest
    assert not [q.name for q in (run / "checkpoints").iterdir() if q.name.startswith(".")]  # swept
    tr.run()
    tr.close()
    assert int(complete_checkpoints(run / "checkpoints")[-1].name.split("_")[1]) == 96

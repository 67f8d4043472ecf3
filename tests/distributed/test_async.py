"""Asynchronous actors and learner over the trajectory spool."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from amago_fast.distributed.actors import POLICY, AsyncConfig, PolicyWatcher, publish_weights, run_actor
from amago_fast.distributed.spool import NAME_RE, TrajectorySpool
from amago_fast.replay import ReplayBuffer

TINY = {
    "trainer": {
        "env": "tmaze",
        "env_args": {"horizon": 3},
        "num_envs": 2,
        "collect_steps": 8,
        "grad_steps_per_round": 2,
        "learning_starts": 16,
        "batch_size": 4,
        "eval_every": 0,
        "eval_episodes": 2,
        "eval_envs": 2,
        "checkpoint_every": 160,
        "seed": 4,
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
EP_LEN = 4  # tmaze horizon=3: every episode is 4 transitions, ending in a terminal step


def traj(T, A=3, seed=0):
    g = np.random.default_rng(seed)
    return {
        "obs": {"observation": g.standard_normal((T + 1, 3)).astype(np.float32)},
        "rl2s": g.standard_normal((T + 1, 1 + A)).astype(np.float32),
        "time_idxs": np.arange(T + 1, dtype=np.int64),
        "actions": np.eye(A, dtype=np.float32)[g.integers(0, A, T)],
        "rews": g.standard_normal(T).astype(np.float32),
        "dones": np.arange(T) == T - 1,
    }


def buffer():
    return ReplayBuffer({"observation": ((3,), np.float32)}, action_dim=3, capacity=1000)


def test_spool_roundtrip_recover_commit(tmp_path):
    sp = TrajectorySpool(tmp_path / "spool")
    for s in range(3):
        sp.write(traj(5 + s, seed=s), actor_id=1, seq=s)
    assert sp.next_seq(1) == 3 and sp.next_seq(0) == 0
    buf = buffer()
    got = sp.ingest(buf)
    assert [T for _, T in got] == [5, 6, 7] and buf.num_trajectories == 3
    np.testing.assert_array_equal(buf.trajectory(buf.trajectory_ids()[1])["rews"], traj(6, seed=1)["rews"])
    assert sp.ingest(buf) == [] and sp.next_seq(1) == 3  # consumed files still count
    assert sp.recover() == 3  # a learner restarted from an older checkpoint re-ingests them
    assert len(sp.ingest(buffer())) == 3
    assert sp.commit() == 3 and not list((sp.root / "consumed").iterdir())
    assert sp.next_seq(1) == 3  # numbering continues from the ingest log
    assert [r["seq"] for r in sp.ingest_log()] == [0, 1, 2, 0, 1, 2]


def test_writer_killed_mid_write_leaves_nothing_readable(tmp_path, monkeypatch):
    sp = TrajectorySpool(tmp_path / "spool")
    real = np.savez

    def dies_halfway(f, **arrays):
        real(f, **arrays)
        f.truncate(f.tell() // 2)
        raise KeyboardInterrupt  # stands for SIGKILL after half the bytes

    monkeypatch.setattr(np, "savez", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        sp.write(traj(9), actor_id=0, seq=0)
    monkeypatch.setattr(np, "savez", real)
    assert list((sp.root / "tmp").iterdir()) and sp.ready() == []
    buf = buffer()
    assert sp.ingest(buf) == [] and buf.num_trajectories == 0
    sp.clear_tmp(0)  # what a restarted actor 0 does first
    assert not list((sp.root / "tmp").iterdir())


def test_rejects_foreign_trajectories_and_bad_args(tmp_path):
    sp = TrajectorySpool(tmp_path / "spool")
    bad = traj(4)
    bad["obs"] = {"observation": np.zeros((5, 7), np.float32)}  # wrong obs shape for this buffer
    sp.write(bad, actor_id=0, seq=0)
    sp.write(traj(4), actor_id=0, seq=1)
    with pytest.warns(UserWarning, match="rejected"):
        got = sp.ingest(buffer())
    assert [n for n, _ in got] == ["a0000-000000001.npz"] and (sp.root / "rejected" / "a0000-000000000.npz").exists()
    with pytest.raises(ValueError, match="actor_id"):
        sp.write(traj(4), actor_id=-1, seq=0)
    with pytest.raises(ValueError, match="T="):
        sp.write(traj(0), actor_id=0, seq=0)
    with pytest.raises(ValueError, match="publish_every"):
        AsyncConfig(publish_every=0)


def test_actor_in_process_spools_complete_episodes_and_loads_weights(tmp_path):
    from amago_fast.agent import Agent, AgentConfig
    from amago_fast.envs import make_env

    run = tmp_path / "run"
    run.mkdir()
    cfg = AgentConfig(**TINY["agent"])
    # the full config, as a run writes it (a partial one reads as a run of an older layout)
    (run / "config.json").write_text(json.dumps({**TINY, "agent": cfg.to_dict()}))
    env = make_env("tmaze", num_envs=1, horizon=3)
    learner = Agent(env.observation_space, env.action_space, cfg)
    with torch.no_grad():
        for p in learner.parameters():
            p.add_(0.5)
    publish_weights(learner, run / POLICY, grad_steps=7, env_steps=123)
    out = run_actor(run, 3, AsyncConfig(refresh_every=8), max_steps=40)
    assert out["weight_loads"] == 1 and out["env_steps"] == 40
    files = TrajectorySpool(run / "spool").ready()
    assert len(files) == out["trajectories"] == 40 // EP_LEN  # 2 envs x 20 steps, all episodes done
    for f in files:
        t = TrajectorySpool.read(f)
        assert NAME_RE.match(f.name).group(1) == "0003"
        np.testing.assert_array_equal(t["time_idxs"], np.arange(EP_LEN + 1))
        assert t["dones"][-1] and not t["dones"][:-1].any()
    w = PolicyWatcher(run / POLICY)
    assert w.maybe_load(learner) == {"grad_steps": "7", "env_steps": "123"} and w.maybe_load(learner) is None


def _cli(*args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-m", "amago_fast", "train", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _reap(p):
    """Kill the process if it still runs, wait for it, close its pipes."""
    if p is None:
        return
    if p.poll() is None:
        p.kill()
    p.wait()
    for pipe in (p.stdout, p.stderr):
        if pipe is not None:
            pipe.close()


def _wait(cond, timeout, what):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_actor_sigkilled_mid_run_learner_keeps_going(tmp_path):
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    run = tmp_path / "run"
    sp_root = run / "spool"
    learner = _cli(
        "--mode",
        "learner",
        "--run-dir",
        str(run),
        "--config",
        "tiny.json",
        "--total-steps",
        "800",
        "--no-progress",
        cwd=tmp_path,
    )
    actor = None
    try:
        _wait(lambda: (run / POLICY).exists(), 120, "the learner's first weights")
        actor = _cli("--mode", "actor", "--run-dir", str(run), "--actor-id", "0", cwd=tmp_path)
        log = lambda: TrajectorySpool(sp_root).ingest_log()  # noqa: E731
        _wait(lambda: len(log()) >= 20 and (run / "metrics.jsonl").exists(), 120, "ingested data and learning")
        actor.send_signal(signal.SIGKILL)
        actor.wait()
        assert actor.returncode == -signal.SIGKILL
        _reap(actor)
        grads_at_kill = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["grad_steps"]
        time.sleep(1.0)
        assert learner.poll() is None  # the learner did not notice, it keeps learning on what it has
        actor = _cli("--mode", "actor", "--run-dir", str(run), "--actor-id", "0", cwd=tmp_path)  # restart
        out, err = learner.communicate(timeout=240)
        assert learner.returncode == 0, err[-3000:]
        actor.wait(timeout=60)  # the learner's STOP file ends it
        assert actor.returncode == 0
    finally:
        for p in (learner, actor):
            _reap(p)
    assert json.loads(out.strip().splitlines()[-1])["env_steps"] >= 800
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert recs[-1]["grad_steps"] > grads_at_kill
    # nothing written was lost: actor 0's numbering has no gap across the kill and restart
    seqs = sorted({r["seq"] for r in TrajectorySpool(sp_root).ingest_log()})
    assert seqs == list(range(len(seqs))) and all(r["T"] == EP_LEN for r in TrajectorySpool(sp_root).ingest_log())
    # every trajectory the learner holds is a complete episode
    ckpt = run / "checkpoints" / json.loads((run / "checkpoints" / "latest.json").read_text())["checkpoint"]
    buf = ReplayBuffer.load(ckpt / "replay")
    assert buf.num_trajectories >= 800 // EP_LEN
    for tid in buf.trajectory_ids():
        t = buf.trajectory(int(tid))
        np.testing.assert_array_equal(t["time_idxs"], np.arange(EP_LEN + 1))
        assert t["dones"][-1] and not t["dones"][:-1].any()


def test_learner_restarts_dead_actors_and_stops_them(tmp_path):
    from amago_fast.agent import AgentConfig
    from amago_fast.distributed.learner import AsyncLearner
    from amago_fast.trainer import TrainerConfig

    tcfg = TrainerConfig.from_dict({**TINY["trainer"], "progress": False})
    lrn = AsyncLearner(tmp_path / "run", tcfg, AgentConfig(**TINY["agent"]), async_cfg=AsyncConfig(num_actors=0))
    assert (tmp_path / "run" / POLICY).exists()  # actors can start before the first update
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    lrn._spawn_actor = lambda i: subprocess.Popen(sleeper)
    lrn.actors = [subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"]), lrn._spawn_actor(1)]
    lrn.actors[0].wait()
    with pytest.warns(UserWarning, match="actor 0 exited with code 3"):
        lrn.collect(1)
    assert lrn.actor_restarts == 1 and all(p.poll() is None for p in lrn.actors)
    procs = list(lrn.actors)
    lrn.stop_actors(timeout_s=0.5)  # sleepers ignore STOP: killed after the timeout
    assert (lrn.spool.root / "STOP").exists() and all(p.returncode is not None for p in procs)
    lrn.close()


def test_learner_restart_reingests_what_its_checkpoint_lacks(tmp_path):
    from amago_fast.agent import AgentConfig
    from amago_fast.distributed.learner import AsyncLearner
    from amago_fast.trainer import TrainerConfig

    run = tmp_path / "run"
    tcfg = TrainerConfig.from_dict({**TINY["trainer"], "progress": False, "checkpoint_every": 0})
    lrn = AsyncLearner(run, tcfg, AgentConfig(**TINY["agent"]), async_cfg=AsyncConfig(num_actors=0))
    run_actor(run, 0, max_steps=64)  # 64 env steps = 16 episodes of 4 transitions
    lrn.collect(1)
    assert lrn.env_steps == 64 and lrn.buffer.num_trajectories == 16
    lrn.checkpoint()  # holds those 16: consumed/ is emptied
    run_actor(run, 0, max_steps=32)  # 8 more
    lrn.collect(1)
    assert lrn.buffer.num_trajectories == 24 and len(list((lrn.spool.root / "consumed").iterdir())) == 8
    lrn.close()  # "crash": no checkpoint after the last ingest

    again = AsyncLearner(run, tcfg, resume=True, async_cfg=AsyncConfig(num_actors=0))
    assert again.recovered == 8 and again.env_steps == 64 and again.buffer.num_trajectories == 16
    again.collect(1)
    assert again.env_steps == 96 and again.buffer.num_trajectories == 24
    seqs = sorted(r["seq"] for r in again.spool.ingest_log())
    assert sorted(set(seqs)) == list(range(24))  # every trajectory written was ingested
    again.close()


def test_learner_gives_up_on_an_actor_that_keeps_dying_at_start(tmp_path):
    from amago_fast.agent import AgentConfig
    from amago_fast.distributed import learner as learner_mod
    from amago_fast.distributed.learner import AsyncLearner
    from amago_fast.trainer import TrainerConfig

    tcfg = TrainerConfig.from_dict({**TINY["trainer"], "progress": False})
    lrn = AsyncLearner(tmp_path / "run", tcfg, AgentConfig(**TINY["agent"]), async_cfg=AsyncConfig(num_actors=0))
    crasher = [sys.executable, "-c", "raise SystemExit(4)"]

    def spawn(i):
        lrn._spawned_at[i] = time.monotonic()
        return subprocess.Popen(crasher)

    lrn._spawn_actor = spawn
    lrn.actors = [spawn(0)]
    for _ in range(learner_mod.ACTOR_MAX_QUICK_EXITS - 1):  # restarted while it might be bad luck
        lrn.actors[0].wait()
        with pytest.warns(UserWarning, match="restarting it"):
            lrn.collect(1)
    lrn.actors[0].wait()
    with pytest.raises(RuntimeError, match="actor 0 exited with code 4 right after starting"):
        lrn.collect(1)
    lrn.close()


def test_actors_spawned_from_a_source_checkout_use_the_installed_package(tmp_path, monkeypatch):
    """`python -m` puts the cwd on sys.path: a learner started inside a source tree (as
    CI's benchmarks are) must not hand its actors the unbuilt source package."""
    from amago_fast.agent import AgentConfig
    from amago_fast.distributed.learner import AsyncLearner
    from amago_fast.trainer import TrainerConfig

    fake_src = tmp_path / "checkout"
    (fake_src / "amago_fast").mkdir(parents=True)
    (fake_src / "amago_fast" / "__init__.py").write_text("raise ImportError('source tree imported')\n")
    monkeypatch.chdir(fake_src)
    tcfg = TrainerConfig.from_dict({**TINY["trainer"], "progress": False})
    lrn = AsyncLearner(tmp_path / "run", tcfg, AgentConfig(**TINY["agent"]), async_cfg=AsyncConfig(num_actors=0))
    lrn.start_actors(1)
    try:
        time.sleep(4)
        assert lrn.actors[0].poll() is None, "the actor died at start"
    finally:
        lrn.stop_actors(timeout_s=10)
        lrn.close()

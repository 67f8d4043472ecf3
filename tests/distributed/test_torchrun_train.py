"""`torchrun -m amago_fast train` on CPU (gloo): rank-0 checkpoints, resume with other rank counts."""

import json
import os
import subprocess
import sys

from amago_fast.distributed.trainer import replay_shards, shards_for_rank
from amago_fast.replay import ReplayBuffer

TINY = {
    "trainer": {
        "num_envs": 2,
        "collect_steps": 8,
        "grad_steps_per_round": 2,
        "learning_starts": 16,
        "batch_size": 4,
        "eval_every": 0,
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


def train(nproc, *args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "amago_fast",
        "train",
        *args,
        "--no-progress",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    return [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]


def latest(run):
    return run / "checkpoints" / json.loads((run / "checkpoints" / "latest.json").read_text())["checkpoint"]


def n_trajs(path):
    return ReplayBuffer.load(path).num_trajectories


def test_shard_assignment_covers_every_shard():
    for n in range(1, 6):
        for m in range(1, 6):
            got = [shards_for_rank(n, r, m) for r in range(m)]
            assert all(got) and set(sum(got, [])) == set(range(n))


def test_torchrun_two_ranks_then_resume_on_one_then_three(tmp_path):
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    run = tmp_path / "run"
    out = train(
        2,
        "--env",
        "tmaze",
        "--env-arg",
        "horizon=3",
        "--total-steps",
        "64",
        "--run-dir",
        str(run),
        "--config",
        "tiny.json",
        "--seed",
        "3",
        cwd=tmp_path,
    )
    assert len(out) == 1 and out[0]["env_steps"] == 64  # only rank 0 reports
    assert json.loads((run / "config.json").read_text())["trainer"]["seed"] == 3  # the base seed, not rank 1's
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    # global env steps: 2 ranks x 2 envs x 8 steps = 32 per round, logged once (rank 0)
    assert [r["env_steps"] for r in recs] == [32, 64] and recs[-1]["grad_steps"] == 4
    ck = latest(run)
    assert ck.name == "step_0000000064"
    shards = replay_shards(ck)
    assert [p.name for p in shards] == ["replay", "replay_rank1"]
    counts = [n_trajs(p) for p in shards]
    assert all(c > 0 for c in counts)
    assert not list((run / "checkpoints").glob(".*"))  # no shard staging or temp dirs left

    def actions(p):
        buf = ReplayBuffer.load(p)
        return [buf.trajectory(int(t))["actions"].tolist() for t in buf.trajectory_ids()]

    assert actions(shards[0]) != actions(shards[1])  # each rank explores with its own seed

    # 2 -> 1 rank (16 env steps per round: 2 rounds, 4 grad steps): the single rank merges both shards, then writes a 1-shard checkpoint
    out = train(1, "--run-dir", str(run), "--resume", "--total-steps", "96", cwd=tmp_path)
    assert out[0]["env_steps"] == 96
    ck = latest(run)
    assert [p.name for p in replay_shards(ck)] == ["replay"]
    assert n_trajs(ck / "replay") >= sum(counts)
    state = json.loads((ck / "state.json").read_text())
    assert state["grad_steps"] == 8 and state["env_steps"] == 96

    # 1 -> 3 ranks (48 per round: 1 round): every rank gets data (ranks 1, 2 reuse shard 0 with their own sampler seed)
    out = train(3, "--run-dir", str(run), "--resume", "--total-steps", "144", cwd=tmp_path)
    assert out[0]["env_steps"] == 144
    ck = latest(run)
    assert [p.name for p in replay_shards(ck)] == ["replay", "replay_rank1", "replay_rank2"]
    assert json.loads((ck / "state.json").read_text())["grad_steps"] == 10

"""NaN/inf from an env inside Trainer.run: a clear NonFiniteError ("raise") or the
trajectory dropped and counted ("drop"); replay, weights and checkpoints stay finite."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from amago_fast.agent import AgentConfig
from amago_fast.envs import register_env
from amago_fast.envs.wrapper import NonFiniteError
from amago_fast.trainer import NonFiniteWeightsError, Trainer, TrainerConfig, latest_checkpoint

AGENT = dict(
    d_model=16, n_heads=2, n_layers=1, d_ff=32, tstep_dim=8, tstep_hidden=16, head_hidden=16, dropout=0.0, warmup=5
)


class SometimesNaN(gym.Env):
    """6-step episodes; every `every`-th episode of a copy has `value` in its `where` at step 3."""

    observation_space = gym.spaces.Box(-5, 5, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, where="reward", every=3, value=float("nan")):
        self.where, self.every, self.value = where, every, value
        self.episode, self.t = -1, 0
        self.emitted = 0  # bad values handed out

    def _bad(self):
        return self.episode % self.every == self.every - 1 and self.t == 3

    def _obs(self):
        o = np.array([self.t / 6, 1.0], np.float32)
        if self.where == "obs" and self._bad():
            o[0] = self.value
            self.emitted += 1
        return o

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        rew = float(action)
        if self.where == "reward" and self._bad():
            rew = self.value
            self.emitted += 1
        return self._obs(), rew, False, self.t >= 6, {}


register_env("sometimes-nan", SometimesNaN, overwrite=True)


def _emitted(tr):
    return [e.unwrapped.emitted for e in tr.env._vec.envs]


def _cfg(**kw):
    base = dict(
        env="sometimes-nan",
        num_envs=2,
        total_steps=96,
        collect_steps=6,
        grad_steps_per_round=2,
        learning_starts=24,
        batch_size=4,
        eval_every=0,
        eval_episodes=4,
        eval_envs=2,
        checkpoint_every=48,
        checkpoint_interval_s=0,
        progress=False,
        seed=1,
    )
    base.update(kw)
    return TrainerConfig(**base)


@pytest.mark.parametrize("where", ["reward", "obs"])
def test_raise_policy_names_the_problem_instead_of_crashing_in_get_actions(tmp_path, where):
    tr = Trainer(tmp_path, _cfg(env_args={"where": where}), AgentConfig(**AGENT))
    with pytest.raises(
        NonFiniteError,
        match=f"'sometimes-nan' copy 0 returned a NaN/inf {'reward' if where == 'reward' else 'observation'}",
    ):
        tr.run()
    assert tr.env_steps < 96 and sum(_emitted(tr)) >= 1
    tr.close()


@pytest.mark.parametrize("where,value", [("reward", float("nan")), ("obs", float("inf"))])
def test_drop_policy_keeps_replay_finite_and_counts(tmp_path, where, value):
    tr = Trainer(
        tmp_path,
        _cfg(env_args={"where": where, "value": value}, nonfinite="drop", eval_episodes=6),
        AgentConfig(**AGENT),
    )
    tr.run()
    # each bad row sits in its own episode: one dropped trajectory per bad value handed out
    bad = sum(_emitted(tr))
    assert bad >= 2 and tr.dropped_trajectories == bad
    buf = tr.buffer
    assert buf.num_trajectories > 0
    for tid in buf.trajectory_ids():
        t = buf.trajectory(int(tid))
        assert np.isfinite(t["rews"]).all() and np.isfinite(t["obs"]["observation"]).all(), tid
        assert np.isfinite(t["rl2s"]).all()
    assert all(torch.isfinite(v).all() for v in tr.agent.state_dict().values() if v.is_floating_point())
    recs = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert recs[-1]["data/dropped_trajectories"] == bad and recs[-1]["data/dropped_transitions"] > 0
    assert all(r.get("train/return_mean") is None or np.isfinite(r["train/return_mean"]) for r in recs)
    assert "nonfinite_episodes" in tr.last_eval and np.isfinite(tr.last_eval["return_mean"])
    tr.close()
    again = Trainer(tmp_path, resume=True)
    assert again.dropped_trajectories == bad
    again.close()


def test_non_finite_weights_stop_the_run_keeping_the_good_checkpoints(tmp_path):
    tr = Trainer(tmp_path, _cfg(keep_checkpoints=1), AgentConfig(**AGENT))
    tr.run(total_steps=48)
    good = latest_checkpoint(tmp_path / "checkpoints")
    assert good.name == "step_0000000048"
    with torch.no_grad():  # a target net: acting still works, only the checkpoint sees it
        next(tr.agent.target.parameters()).fill_(float("nan"))
    with pytest.raises(NonFiniteWeightsError, match="last finite checkpoint: .*step_0000000048"):
        tr._save()
    assert latest_checkpoint(tmp_path / "checkpoints") == good
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest.json", "step_0000000048"]
    tr.close()

import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from amago_fast.agent import Agent, AgentConfig
from amago_fast.trainer import Trainer, TrainerConfig, evaluate, latest_checkpoint, load_weights


def _metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _drop_wall(records):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in records]


@pytest.mark.parametrize(
    "agent_kw",
    # AMAGO's DPG critic copy carries its gradients across updates: the checkpoint keeps them
    [{}, {"dpg_critics": "amago", "warmup_from_zero": True}],
    ids=["defaults", "amago-dpg-critics"],
)
def test_resume_equals_uninterrupted_run(tmp_path, tiny_configs, agent_kw):
    cfg, acfg = tiny_configs()
    acfg = dataclasses.replace(acfg, **agent_kw)
    a = Trainer(tmp_path / "a", cfg, acfg)
    a.run()
    a.close()

    b = Trainer(tmp_path / "b", cfg, acfg)
    b.run(total_steps=80)  # stops (and checkpoints) half way
    b.close()
    del b
    torch.manual_seed(12345)  # disturb the process RNGs: resume must restore them
    np.random.seed(7)
    c = Trainer(tmp_path / "b", resume=True)
    assert c.env_steps == 80 and c.grad_steps > 0
    c.run()
    c.close()

    wa = load_file(str(latest_checkpoint(tmp_path / "a" / "checkpoints") / "weights.safetensors"))
    wb = load_file(str(latest_checkpoint(tmp_path / "b" / "checkpoints") / "weights.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert _drop_wall(_metrics(tmp_path / "a")) == _drop_wall(_metrics(tmp_path / "b"))


def test_run_writes_metrics_and_checkpoints(tmp_path, tiny_configs):
    cfg, acfg = tiny_configs(total_steps=96, checkpoint_every=48, keep_checkpoints=1)
    tr = Trainer(tmp_path, cfg, acfg)
    out = tr.run()
    tr.close()
    recs = _metrics(tmp_path)
    assert all({"env_steps", "grad_steps", "wall_s"} <= r.keys() for r in recs)
    assert recs[-1]["env_steps"] == 96 and recs[-1]["grad_steps"] == tr.grad_steps > 0
    assert "eval/success_rate" in recs[-1] and "eval/return_mean" in recs[-1]
    assert 0.0 <= out["success_rate"] <= 1.0 and out["episodes"] == 4
    ck = tmp_path / "checkpoints"
    dirs = [p for p in ck.iterdir() if p.is_dir()]
    assert [p.name for p in dirs] == ["step_0000000096"]  # older one pruned, no temp dirs left
    files = {p.name for p in dirs[0].iterdir()}
    assert {"weights.safetensors", "optimizer.safetensors", "state.json", "replay"} <= files
    assert not any(p.suffix in (".pt", ".pkl", ".pth") for p in dirs[0].rglob("*"))


def test_saved_weights_reload_to_the_same_actions(tmp_path, tiny_configs):
    cfg, acfg = tiny_configs(total_steps=64, checkpoint_every=64)
    tr = Trainer(tmp_path, cfg, acfg)
    tr.run()
    saved = json.loads((tmp_path / "config.json").read_text())
    fresh = Agent(tr.env.observation_space, tr.env.action_space, AgentConfig.from_dict(saved["agent"]))
    load_weights(fresh, latest_checkpoint(tmp_path / "checkpoints"))
    obs = {"observation": np.random.default_rng(0).normal(size=(2, 2)).astype(np.float32)}
    rl2s = np.zeros((2, 1 + tr.env.action_dim), np.float32)
    s1, s2 = tr.agent.init_state(2), fresh.init_state(2)
    for t in range(5):
        _, s1, d1 = tr.agent.get_actions(obs, rl2s, np.full(2, t), s1, sample=False, return_dist=True)
        _, s2, d2 = fresh.get_actions(obs, rl2s, np.full(2, t), s2, sample=False, return_dist=True)
        assert torch.equal(d1.logits, d2.logits)
    # evaluation is deterministic given its seed
    r1 = evaluate(fresh, "tmaze", {"horizon": 4}, episodes=4, num_envs=2, seed=11)
    r2 = evaluate(tr.agent, "tmaze", {"horizon": 4}, episodes=4, num_envs=2, seed=11)
    assert r1 == r2
    tr.close()


def test_context_is_sized_from_the_env(tmp_path, tiny_configs):
    cfg, acfg = tiny_configs()
    tr = Trainer(tmp_path, cfg, acfg)
    assert tr.env.max_episode_steps == 5
    assert tr.agent.config.max_seq_len == 6 and tr.seq_len == 5
    tr.close()


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="num_envs"):
        TrainerConfig(num_envs=0)
    with pytest.raises(ValueError, match="vectorization"):
        TrainerConfig(vectorization="threads")
    with pytest.raises(ValueError, match="unknown TrainerConfig"):
        TrainerConfig.from_dict({"envs": "tmaze"})


def test_resume_without_run_dir_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        Trainer(tmp_path / "nope", resume=True)


@pytest.mark.parametrize(
    "env,env_args,steps,agent_kw",
    [
        ("tmaze", {"horizon": 4}, 48, {"traj_encoder": "gru"}),
        ("gym:Pendulum-v1", {}, 416, {"pos_emb": "rotary"}),
        ("dark-key-door", {"size": 5, "episode_length": 10, "horizon": 40}, 96, {"pos_emb": "learned"}),
    ],
    ids=["gru-tmaze", "box-pendulum", "dark-key-door"],
)
def test_trainer_runs_other_encoders_and_action_spaces(tmp_path, tiny_configs, env, env_args, steps, agent_kw):
    # the first gradient step waits for the first finished trajectory (Pendulum: 200 steps)
    cfg, acfg = tiny_configs(
        env=env,
        env_args=env_args,
        total_steps=steps,
        learning_starts=16,
        eval_every=0,
        eval_episodes=2,
        eval_max_steps=400,
        checkpoint_every=0,
    )
    tr = Trainer(tmp_path, cfg, AgentConfig(**{**acfg.to_dict(), **agent_kw}))
    tr.run()
    assert tr.grad_steps > 0 and np.isfinite(_metrics(tmp_path)[-1]["train/loss"])
    tr.close()


def test_context_from_env_is_capped_for_long_episodes():
    from amago_fast import AgentConfig, TrainerConfig
    from amago_fast.trainer import sized_agent_config

    a = AgentConfig(max_seq_len=16, max_time=64)
    assert sized_agent_config(a, TrainerConfig(), 20).max_seq_len == 21  # whole short episodes
    capped = sized_agent_config(a, TrainerConfig(), 500)  # CartPole-length episodes: a window
    assert capped.max_seq_len == 128 and capped.max_time >= 128
    assert sized_agent_config(a, TrainerConfig(context_cap=0), 500).max_seq_len == 501
    assert sized_agent_config(a, TrainerConfig(context_from_env=False), 500).max_seq_len == 16

"""load_policy(run_dir).predict on raw gymnasium envs feeds the agent exactly what the
training wrapper (AmagoVecEnv + Agent.get_actions) feeds it, batched and unbatched."""

from __future__ import annotations

import numpy as np
import pytest

import amago_fast
from amago_fast.agent import AgentConfig
from amago_fast.envs import make_env, resolve_env
from amago_fast.policy import load_run
from amago_fast.trainer import Trainer, TrainerConfig

TINY_AGENT = dict(d_model=16, n_heads=2, n_layers=1, d_ff=32, tstep_dim=8, tstep_hidden=16, head_hidden=16)
ENV = "bandit"  # a reward on every pull, so the fed-back reward is never all zeros
ENV_ARGS = {"arms": 3, "pulls": 4}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("policy") / "run"
    cfg = TrainerConfig(
        env=ENV,
        env_args=ENV_ARGS,
        num_envs=2,
        collect_steps=8,
        grad_steps_per_round=2,
        learning_starts=16,
        batch_size=4,
        eval_every=0,
        eval_episodes=2,
        eval_envs=2,
        checkpoint_every=32,
        total_steps=32,
        progress=False,
    )
    tr = Trainer(run, cfg, AgentConfig(**TINY_AGENT))
    tr.run()
    tr.close()
    assert tr.grad_steps > 0
    return run


def _recording(agent, log):
    real = agent.get_actions

    def get_actions(obs, rl2s, time_idxs, state, sample=True):
        log.append(({k: np.array(v) for k, v in obs.items()}, np.array(rl2s), np.array(time_idxs)))
        return real(obs, rl2s, time_idxs, state, sample=sample)

    agent.get_actions = get_actions


def _reference(run_dir, n, steps, seed):
    """Inputs and actions of the training-time path: AmagoVecEnv + Agent.get_actions."""
    agent = load_run(run_dir).agent
    log: list = []
    _recording(agent, log)
    env = make_env(ENV, num_envs=n, seed=seed, **ENV_ARGS)
    obs, rl2s, t = env.reset()
    state = agent.init_state(n)
    actions = []
    for _ in range(steps):
        a, state = agent.get_actions(obs, rl2s, t, state, sample=False)
        actions.append(a)
        res = env.step(a)
        if res.done.any():
            agent.reset_state(state, np.flatnonzero(res.done))
        obs, rl2s, t = res.next_obs, res.next_rl2s, res.next_time_idxs
    env.close()
    return log, actions


def _with_policy(run_dir, n, steps, seed, batched=True):
    policy = amago_fast.load_policy(run_dir, num_envs=n if batched else None)
    log: list = []
    _recording(policy.agent, log)
    factory = resolve_env(ENV, ENV_ARGS)
    envs = [factory(**ENV_ARGS) for _ in range(n)]
    obs = [e.reset(seed=seed + i)[0] for i, e in enumerate(envs)]
    rewards = None
    actions = []
    for _ in range(steps):
        a = policy.predict(
            np.stack(obs) if batched else obs[0], rewards if batched else (None if rewards is None else rewards[0])
        )
        a = np.atleast_1d(a)
        actions.append(a)
        rewards, done = np.zeros(n, np.float32), []
        for i, e in enumerate(envs):
            o, r, term, trunc, _ = e.step(int(a[i]))
            rewards[i] = r
            if term or trunc:
                o, _ = e.reset()
                done.append(i)
            obs[i] = o
        if done:
            policy.reset(done)
    return log, actions


def _same_inputs(ref, got):
    assert len(ref) == len(got)
    for (o1, r1, t1), (o2, r2, t2) in zip(ref, got):
        assert o1.keys() == o2.keys()
        for k in o1:
            np.testing.assert_array_equal(o1[k], o2[k])
        np.testing.assert_array_equal(r1, r2)  # previous reward and previous action vector
        np.testing.assert_array_equal(t1, t2)


def test_predict_batched_matches_the_training_wrapper(run_dir):
    # 14 steps of a 4-step episode: several resets, rewards and one-hot actions fed back
    ref_log, ref_actions = _reference(run_dir, n=3, steps=14, seed=7)
    log, actions = _with_policy(run_dir, n=3, steps=14, seed=7)
    _same_inputs(ref_log, log)
    np.testing.assert_array_equal(np.stack(ref_actions), np.stack(actions))
    assert any(r[1][:, 0].any() for r in log), "no reward was ever fed back: the test checks nothing"


def test_predict_unbatched_one_env(run_dir):
    ref_log, ref_actions = _reference(run_dir, n=1, steps=9, seed=3)
    log, actions = _with_policy(run_dir, n=1, steps=9, seed=3, batched=False)
    _same_inputs(ref_log, log)
    np.testing.assert_array_equal(np.stack(ref_actions), np.stack(actions))
    policy = amago_fast.load_policy(run_dir)
    obs, _ = resolve_env(ENV, ENV_ARGS)(**ENV_ARGS).reset(seed=0)
    assert np.ndim(policy.predict(obs)) == 0  # one env: a plain action, not a batch of one


def test_predict_rejects_bad_use(run_dir):
    policy = amago_fast.load_policy(run_dir, num_envs=2)
    obs, _ = resolve_env(ENV, ENV_ARGS)(**ENV_ARGS).reset(seed=0)
    policy.predict(np.stack([obs, obs]))
    with pytest.raises(ValueError, match="reward"):
        policy.predict(np.stack([obs, obs]))  # second step without the reward
    with pytest.raises(ValueError, match="expected 2 observations"):
        policy.predict(np.stack([obs, obs, obs]), reward=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="env_ids"):
        policy.reset([5])
    with pytest.raises(ValueError, match="num_envs"):
        amago_fast.load_policy(run_dir, num_envs=0)


def test_load_policy_errors(tmp_path, run_dir):
    with pytest.raises(FileNotFoundError, match="config.json"):
        amago_fast.load_policy(tmp_path)
    empty = tmp_path / "fresh"
    empty.mkdir()
    (empty / "config.json").write_text((run_dir / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        amago_fast.load_policy(empty)


@pytest.mark.parametrize(
    "env,env_args",
    [("mazerunner", {"size": 5, "goals": 2, "horizon": 8}), ("gym:Pendulum-v1", {"max_episode_steps": 10})],
)
def test_predict_in_dict_and_box_spaces(tmp_path, env, env_args):
    """Dict observations with a key the policy never sees (mazerunner's 'achieved') and a
    Box action space the agent's [-1, 1] actions are rescaled to (Pendulum: [-2, 2])."""
    cfg = TrainerConfig(
        env=env,
        env_args=env_args,
        num_envs=2,
        collect_steps=8,
        grad_steps_per_round=1,
        learning_starts=16,
        batch_size=2,
        eval_every=0,
        eval_episodes=2,
        eval_envs=2,
        checkpoint_every=16,
        total_steps=16,
        progress=False,
        context_from_env=False,
    )
    tr = Trainer(tmp_path / "run", cfg, AgentConfig(**TINY_AGENT, max_seq_len=8))
    tr.run()
    tr.close()
    policy = amago_fast.load_policy(tmp_path / "run", num_envs=2)
    raw = resolve_env(env, env_args)(**env_args)
    obs = [raw.reset(seed=s)[0] for s in (0, 1)]
    batch = {k: np.stack([o[k] for o in obs]) for k in obs[0]} if isinstance(obs[0], dict) else np.stack(obs)
    reward = None
    for _ in range(5):
        actions = policy.predict(batch, reward)
        assert len(actions) == 2 and all(
            raw.action_space.contains(np.asarray(a, raw.action_space.dtype)) for a in actions
        )
        reward = np.zeros(2)

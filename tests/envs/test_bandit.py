"""Bernoulli bandit env and the Thompson-sampling baseline."""

from __future__ import annotations

import numpy as np
import pytest

from amago_fast.envs import BernoulliBandit, make_env, thompson_sampling_return
from amago_fast.envs.bandit import thompson_sampling_returns


def test_task_is_resampled_every_reset_and_exposed():
    env = BernoulliBandit(arms=5, pulls=10)
    obs, info = env.reset(seed=0)
    m1 = info["arm_means"]
    assert m1.shape == (5,) and np.all((m1 >= 0) & (m1 <= 1))
    _, info = env.reset()
    assert not np.array_equal(m1, info["arm_means"])
    np.testing.assert_array_equal(obs, [0.0])


def test_episode_is_pulls_steps_and_rewards_follow_means():
    env = BernoulliBandit(arms=3, pulls=3999)
    env.reset(seed=1, options={"arm_means": [0.0, 0.25, 1.0]})
    rews = []
    for t in range(3999):
        obs, r, term, trunc, info = env.step(t % 3)
        rews.append(r)
        np.testing.assert_array_equal(obs, [0.0])  # uninformative
        assert term == (t == 3998) and not trunc
    rews = np.array(rews).reshape(-1, 3)
    assert rews[:, 0].sum() == 0 and rews[:, 2].all()
    assert abs(rews[:, 1].mean() - 0.25) < 0.04


def test_vectorized_bandit_rl2s_carry_reward_and_action():
    env = make_env("bandit", num_envs=3, seed=0, arms=4, pulls=2)
    assert env.max_episode_steps == 2 and env.action_dim == 4
    env.reset()
    r = env.step(np.array([0, 1, 3]))
    np.testing.assert_array_equal(r.rl2s[:, 0], r.rews)
    np.testing.assert_array_equal(r.rl2s[:, 1:].argmax(1), [0, 1, 3])
    assert r.infos[0]["arm_means"].shape == (4,)
    r = env.step(np.array([0, 1, 3]))
    assert r.done.all() and all("episode_return" in i for i in r.infos)
    env.close()


def test_thompson_sampling_near_75_for_5_arms_100_pulls():
    ts = thompson_sampling_return(arms=5, pulls=100, episodes=4000, seed=0)
    assert 73.5 < ts < 76.5  # ~75 (RL^2 reports ~75 too), well under the oracle's 83.3


def test_thompson_sampling_beats_random_and_is_seeded():
    r = thompson_sampling_returns(arms=2, pulls=50, episodes=3000, seed=3)
    assert r.shape == (3000,) and r.mean() > 25 + 5  # random policy scores 25
    np.testing.assert_array_equal(r, thompson_sampling_returns(2, 50, 3000, seed=3))


@pytest.mark.parametrize("kw", [dict(arms=1), dict(pulls=0), dict(arms=2.5)])
def test_bad_args(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        BernoulliBandit(**kw)
    with pytest.raises(ValueError, match=next(iter(kw))):
        thompson_sampling_return(**kw)


def test_thompson_sampling_through_the_vectorized_env_matches_the_baseline():
    """Run Thompson sampling as an agent on make_env('bandit'): same score as the
    closed-form simulator, so the env and the baseline model the same task."""
    n, arms, pulls = 200, 5, 100
    env = make_env("bandit", num_envs=n, seed=5, arms=arms, pulls=pulls)
    env.reset()
    rng = np.random.default_rng(5)
    alpha, beta = np.ones((n, arms)), np.ones((n, arms))
    rows = np.arange(n)
    for t in range(pulls):
        arm = rng.beta(alpha, beta).argmax(1)
        res = env.step(arm)
        alpha[rows, arm] += res.rews
        beta[rows, arm] += 1 - res.rews
    assert res.done.all()
    returns = np.array([i["episode_return"] for i in res.infos])
    # 200 tasks: standard error ~1.0 around ~75
    assert abs(returns.mean() - thompson_sampling_return(arms, pulls, 4000, seed=0)) < 3.5
    env.close()

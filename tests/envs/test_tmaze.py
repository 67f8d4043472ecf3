"""Passive T-Maze: dynamics, rewards, and AMAGO's observation layout (real fixture)."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from amago_fast.envs import TMaze, make_env

FIXTURES = "/work/shared/fixtures/amago_buffers/tmaze_h20/fifo"


def _rollout(env, goal, actions):
    obs, _ = env.reset(seed=0, options={"goal": goal})
    out = [obs]
    rews, infos = [], []
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append(obs), rews.append(r), infos.append(info)
    return np.array(out), np.array(rews), term, infos


@pytest.mark.parametrize("goal", [1, -1])
@pytest.mark.parametrize("horizon", [1, 4])
def test_optimal_policy_succeeds(goal, horizon):
    env = TMaze(horizon=horizon)
    turn = 1 if goal == 1 else 3
    obs, rews, term, infos = _rollout(env, goal, [0] * horizon + [turn])
    assert term and infos[-1]["success"] is True
    np.testing.assert_array_equal(rews, [0.0] * horizon + [1.0])
    np.testing.assert_array_equal(obs[0], [0, goal])
    np.testing.assert_array_equal(obs[-1], [1, goal])
    np.testing.assert_array_equal(obs[horizon], [1, 0])  # at the junction, not turned
    assert not obs[1:horizon].any()  # corridor: the goal is no longer shown


def test_wrong_turn_and_penalty():
    env = TMaze(horizon=4)
    obs, rews, term, infos = _rollout(env, 1, [0, 3, 0, 2, 0])  # bumps a wall, goes back
    # every step that does not move right costs -1/horizon; the last step is the turn
    np.testing.assert_allclose(rews, [0, -0.25, 0, -0.25, 0.0])
    assert term and infos[-1]["success"] is False
    obs, rews, _, infos = _rollout(TMaze(horizon=4, penalty=0.0), 1, [0, 0, 0, 0, 3])
    np.testing.assert_array_equal(rews, [0, 0, 0, 0, 0])
    assert infos[-1]["success"] is False


def test_walls_are_no_ops():
    env = TMaze(horizon=3)
    obs, _, _, _ = _rollout(env, -1, [2, 1, 3, 0, 0, 0, 1, 2, 1])
    assert env._x == 3 and env._y == 1  # junction arm; left/up from the arm are walls


@pytest.mark.skipif(not os.path.isdir(FIXTURES), reason="AMAGO fixtures not present")
def test_matches_amago_fixture_trajectories():
    """Replaying AMAGO's stored actions through TMaze reproduces its obs and rewards."""
    files = sorted(glob.glob(os.path.join(FIXTURES, "*.npz")))
    assert files
    for path in files:
        data = np.load(path)
        ref_obs = data["_OBS_KEY_observation"]  # (T+1, 2)
        actions = data["actions"].argmax(1)  # (T,)
        goal = int(ref_obs[0, 1])
        env = TMaze(horizon=20)
        obs, rews, _, _ = _rollout(env, goal, actions)
        np.testing.assert_array_equal(obs, ref_obs, err_msg=path)
        np.testing.assert_allclose(rews, data["rews"][:, 0], rtol=1e-6, err_msg=path)


def test_vectorized_tmaze_through_make_env():
    env = make_env("tmaze", num_envs=4, seed=1, horizon=3)
    assert env.max_episode_steps == 4 and env.action_dim == 4
    obs, _, _ = env.reset()
    goals = obs["observation"][:, 1].copy()
    assert set(np.unique(goals)) <= {-1.0, 1.0}
    for _ in range(3):
        r = env.step(np.zeros(4, int))
    r = env.step(np.where(goals > 0, 1, 3))
    assert r.done.all() and all(i["success"] for i in r.infos)
    np.testing.assert_array_equal(r.rews, [1, 1, 1, 1])
    np.testing.assert_array_equal(r.next_time_idxs, [0, 0, 0, 0])
    assert set(np.unique(r.next_obs["observation"][:, 1])) <= {-1.0, 1.0}
    env.close()


def test_bad_horizon():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="horizon"):
            TMaze(horizon=bad)

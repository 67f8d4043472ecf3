"""Dark key-to-door: rewards, inner-episode resets inside a fixed-horizon trial."""

from __future__ import annotations

import numpy as np
import pytest

from amago_fast.envs import DarkKeyDoor, make_env

STAY, UP, DOWN, LEFT, RIGHT = range(5)


def _path(src, dst):
    """Actions walking from src to dst (x first, then y)."""
    dx, dy = int(dst[0] - src[0]), int(dst[1] - src[1])
    return [RIGHT if dx > 0 else LEFT] * abs(dx) + [UP if dy > 0 else DOWN] * abs(dy)


def test_key_then_door_rewards_and_inner_reset():
    env = DarkKeyDoor(size=5, episode_length=30, horizon=200)
    _, info = env.reset(seed=4)
    key, door = info["key"], info["door"]
    start = env._pos.copy()
    assert not np.array_equal(start, key) and not np.array_equal(start, door)
    # the door without the key gives nothing
    rews = [env.step(a)[1] for a in _path(start, door)]
    assert sum(rews) == 0
    rews = [env.step(a)[1] for a in _path(door, key)]
    assert rews[-1] == 1.0 and sum(rews) == 1.0
    obs, r, term, _, info = [None] * 5
    for a in _path(key, door):
        obs, r, term, _, info = env.step(a)
    assert r == 1.0 and not term
    assert info["doors_opened"] == 1 and info["inner_episodes"] == 1
    assert not env._has_key  # a new inner episode in the same room
    np.testing.assert_array_equal(info["key"], key)


def test_inner_episode_timeout_and_trial_success():
    env = DarkKeyDoor(size=4, episode_length=5, horizon=12, random_start=False)
    _, info = env.reset(seed=0)
    centre = np.array([2, 2])
    for t in range(5):
        _, _, term, _, info = env.step(STAY)
    assert info["inner_episodes"] == 1 and np.array_equal(env._pos, centre)
    # idle through the rest of the trial: no door opened, so no success
    for t in range(7):
        _, _, term, _, info = env.step(STAY)
    assert term and info["success"] is False and info["doors_opened"] == 0


def test_success_when_door_opened_at_the_end():
    env = DarkKeyDoor(size=3, episode_length=40, horizon=40, random_start=False)
    _, info = env.reset(seed=1)
    start = env._pos.copy()
    actions = _path(start, info["key"]) + _path(info["key"], info["door"])
    for a in actions:
        env.step(a)
    for _ in range(40 - len(actions) - 1):
        _, _, term, _, info = env.step(STAY)
        assert not term
    _, _, term, _, info = env.step(STAY)
    assert term and info["success"] is True


def test_observation_is_position_only_unless_show_key():
    env = DarkKeyDoor(size=9)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2,) and env.observation_space.contains(obs)
    np.testing.assert_allclose(obs * 8, env._pos)
    env2 = DarkKeyDoor(show_key=True)
    obs, _ = env2.reset(seed=0)
    assert obs.shape == (3,) and obs[2] == 0.0


def test_vectorized_fixed_horizon():
    env = make_env("dark-key-door", num_envs=2, seed=0, size=5, episode_length=4, horizon=10)
    assert env.max_episode_steps == 10 and env.action_dim == 5
    env.reset()
    for t in range(10):
        r = env.step(np.random.default_rng(t).integers(0, 5, 2))
    assert r.done.all() and all("success" in i for i in r.infos)
    np.testing.assert_array_equal(r.time_idxs, [10, 10])
    env.close()


@pytest.mark.parametrize("kw", [dict(size=2), dict(episode_length=0), dict(horizon=-1)])
def test_bad_args(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        DarkKeyDoor(**kw)

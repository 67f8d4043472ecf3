"""AmagoVecEnv against hand-computed time-step sequences."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from amago_fast.envs import AmagoVecEnv, make_env, register_env
from amago_fast.envs.spaces import dict_observation_space, to_dict_obs


def _vec(counter_env, lengths, vectorization="sync", **kw):
    fns = [lambda n=n: counter_env(length=n, **kw) for n in lengths]
    return AmagoVecEnv(fns, vectorization=vectorization, seed=0)


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_hand_computed_sequence_copies_end_at_different_steps(counter_env, vectorization):
    env = _vec(counter_env, [2, 3], vectorization)
    try:
        obs, rl2s, t = env.reset()
        assert env.action_dim == 3 and env.observation_space["observation"].shape == (2,)
        np.testing.assert_array_equal(obs["observation"], [[0, 0], [0, 0]])
        np.testing.assert_array_equal(rl2s, np.zeros((2, 4)))
        np.testing.assert_array_equal(t, [0, 0])

        # step 1: actions (1, 2) -> rewards 10+1, 10+2; nobody done
        r = env.step(np.array([1, 2]))
        np.testing.assert_array_equal(r.obs["observation"], [[0, 1], [0, 1]])
        np.testing.assert_array_equal(r.rl2s, [[11, 0, 1, 0], [12, 0, 0, 1]])
        np.testing.assert_array_equal(r.action_vecs, [[0, 1, 0], [0, 0, 1]])
        np.testing.assert_array_equal(r.time_idxs, [1, 1])
        np.testing.assert_array_equal(r.done, [False, False])
        assert r.next_obs is r.obs or np.array_equal(r.next_obs["observation"], r.obs["observation"])
        np.testing.assert_array_equal(r.next_rl2s, r.rl2s)
        np.testing.assert_array_equal(r.next_time_idxs, [1, 1])
        assert r.infos[0]["t"] == 1 and "episode_return" not in r.infos[0]

        # step 2: copy 0 (length 2) ends; its stored obs is the final one, next is a reset
        r = env.step(np.array([0, 0]))
        np.testing.assert_array_equal(r.done, [True, False])
        np.testing.assert_array_equal(r.terminated, [True, False])
        np.testing.assert_array_equal(r.truncated, [False, False])
        np.testing.assert_array_equal(r.obs["observation"], [[0, 2], [0, 2]])
        np.testing.assert_array_equal(r.rl2s, [[20, 1, 0, 0], [20, 1, 0, 0]])
        np.testing.assert_array_equal(r.time_idxs, [2, 2])
        np.testing.assert_array_equal(r.next_obs["observation"], [[1, 0], [0, 2]])
        np.testing.assert_array_equal(r.next_rl2s, [[0, 0, 0, 0], [20, 1, 0, 0]])
        np.testing.assert_array_equal(r.next_time_idxs, [0, 2])
        assert r.infos[0]["episode_return"] == 31.0 and r.infos[0]["episode_length"] == 2
        assert r.infos[0]["success"] is True
        assert "episode_return" not in r.infos[1]
        np.testing.assert_array_equal(r.rews, [20, 20])

        # step 3: copy 1 ends (length 3), copy 0 is one step into episode 2
        r = env.step(np.array([2, 1]))
        np.testing.assert_array_equal(r.done, [False, True])
        np.testing.assert_array_equal(r.obs["observation"], [[1, 1], [0, 3]])
        np.testing.assert_array_equal(r.rl2s, [[12, 0, 0, 1], [31, 0, 1, 0]])
        np.testing.assert_array_equal(r.time_idxs, [1, 3])
        np.testing.assert_array_equal(r.next_obs["observation"], [[1, 1], [1, 0]])
        np.testing.assert_array_equal(r.next_time_idxs, [1, 0])
        np.testing.assert_array_equal(r.next_rl2s[1], [0, 0, 0, 0])
        assert r.infos[1]["episode_return"] == 12 + 20 + 31 and r.infos[1]["episode_length"] == 3

        # step 4: copy 0 ends its second episode (success False on odd episodes)
        r = env.step(np.array([0, 0]))
        np.testing.assert_array_equal(r.done, [True, False])
        assert r.infos[0]["success"] is False and r.infos[0]["episode_return"] == 32.0
    finally:
        env.close()


def test_truncation_is_reported_and_resets(counter_env):
    env = _vec(counter_env, [1, 2], truncate=True)
    env.reset()
    r = env.step([0, 0])
    np.testing.assert_array_equal(r.truncated, [True, False])
    np.testing.assert_array_equal(r.terminated, [False, False])
    np.testing.assert_array_equal(r.done, [True, False])
    np.testing.assert_array_equal(r.next_time_idxs, [0, 1])
    env.close()


def test_box_actions_are_clipped_stored_and_rescaled(counter_env):
    box = spaces.Box(np.array([0.0, -2.0], np.float32), np.array([10.0, 2.0], np.float32))
    envs = [counter_env(length=5, action_space=box) for _ in range(2)]
    fns = [lambda e=e: e for e in envs]
    env = AmagoVecEnv(fns, seed=0)
    env.reset()
    r = env.step(np.array([[-1.0, 0.5], [3.0, -7.0]]))
    np.testing.assert_allclose(r.action_vecs, [[-1, 0.5], [1, -1]])
    np.testing.assert_allclose(r.rl2s[:, 1:], r.action_vecs)
    # the env saw [0, 1] and [10, -2]: low + (a + 1) / 2 * (high - low)
    np.testing.assert_allclose(envs[0].last_action, [0.0, 1.0])
    np.testing.assert_allclose(envs[1].last_action, [10.0, -2.0])
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([[np.nan, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros((2, 3)))
    env.close()


def test_multibinary_actions(counter_env):
    env = AmagoVecEnv([lambda: counter_env(action_space=spaces.MultiBinary(3))] * 2, seed=0)
    env.reset()
    r = env.step(np.array([[1, 0, 1], [0, 0, 0]]))
    np.testing.assert_array_equal(r.action_vecs, [[1, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(r.rews, [12, 10])
    with pytest.raises(ValueError, match="0 or 1"):
        env.step(np.array([[2, 0, 1], [0, 0, 0]]))
    env.close()


def test_discrete_action_validation(counter_env):
    env = _vec(counter_env, [3, 3])
    with pytest.raises(RuntimeError, match="reset"):
        env.step([0, 0])
    env.reset()
    with pytest.raises(ValueError, match="out of"):
        env.step([0, 3])
    with pytest.raises(ValueError, match="shape"):
        env.step([0, 1, 2])
    with pytest.raises(TypeError, match="integers"):
        env.step(np.array([0.5, 1.0]))
    r = env.step(np.array([[1], [2]]))  # (N, 1) is accepted
    np.testing.assert_array_equal(r.action_vecs.argmax(1), [1, 2])
    env.close()


def test_discrete_start_offset_is_added(counter_env):
    envs = [counter_env(action_space=spaces.Discrete(3, start=-1)) for _ in range(2)]
    env = AmagoVecEnv([lambda e=e: e for e in envs])
    env.reset()
    r = env.step([0, 2])
    assert int(envs[0].last_action) == -1 and int(envs[1].last_action) == 1
    np.testing.assert_array_equal(r.action_vecs, [[1, 0, 0], [0, 0, 1]])
    env.close()


def test_observation_conversions():
    space = spaces.Dict(
        {
            "pos": spaces.Discrete(4, start=1),
            "img": spaces.Box(0, 255, (2, 2), np.uint8),
            "md": spaces.MultiDiscrete([2, 3]),
            "mb": spaces.MultiBinary(2),
        }
    )
    conv = dict_observation_space(space)
    assert conv["pos"].shape == (4,) and conv["img"].dtype == np.uint8
    assert conv["md"].shape == (5,) and conv["mb"].dtype == np.int8
    out = to_dict_obs(space, {"pos": 2, "img": np.ones((2, 2)), "md": np.array([1, 2]), "mb": np.array([1, 0])})
    np.testing.assert_array_equal(out["pos"], [0, 1, 0, 0])
    np.testing.assert_array_equal(out["md"], [0, 1, 0, 0, 1])
    for key, value in out.items():
        assert conv[key].contains(value), key
    with pytest.raises(TypeError, match="unsupported"):
        dict_observation_space(spaces.Text(5))
    with pytest.raises(TypeError, match="nested Tuple"):
        dict_observation_space(spaces.Tuple([spaces.Tuple([spaces.Discrete(2)])]))


def test_discrete_observation_env_is_one_hot():
    env = make_env("gym:FrozenLake-v1", num_envs=2, seed=3, is_slippery=False)
    obs, _, _ = env.reset()
    assert obs["observation"].shape == (2, 16) and obs["observation"].dtype == np.float32
    np.testing.assert_array_equal(obs["observation"].sum(1), [1, 1])
    assert env.max_episode_steps == 100
    env.close()


def test_gym_continuous_env_and_seeding():
    a = make_env("gym:Pendulum-v1", num_envs=2, seed=7)
    b = make_env("gym:Pendulum-v1", num_envs=2, seed=7)
    oa, _, _ = a.reset()
    ob, _, _ = b.reset()
    np.testing.assert_array_equal(oa["observation"], ob["observation"])
    assert not np.array_equal(oa["observation"][0], oa["observation"][1])
    ra, rb = a.step(np.full((2, 1), 0.3)), b.step(np.full((2, 1), 0.3))
    np.testing.assert_array_equal(ra.obs["observation"], rb.obs["observation"])
    assert a.action_dim == 1 and a.max_episode_steps == 200
    a.close(), b.close()


def test_make_env_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown env 'nope'.*tmaze"):
        make_env("nope")
    with pytest.raises(ValueError, match="unknown env_args \\['horizn'\\].*horizon"):
        make_env("tmaze", horizn=3)
    with pytest.raises(ValueError, match="horizon"):
        make_env("tmaze", horizon=0)
    with pytest.raises(ValueError, match="num_envs"):
        make_env("tmaze", num_envs=0)
    with pytest.raises(ValueError, match="vectorization"):
        make_env("tmaze", vectorization="threads")
    with pytest.raises(ValueError, match="gym:NoSuchEnv-v0"):
        make_env("gym:NoSuchEnv-v0")
    with pytest.raises(ValueError, match="unknown env_args"):
        make_env("gym:CartPole-v1", bogus=1)


def test_register_env(counter_env):
    register_env("counter-test", counter_env, overwrite=True)
    with pytest.raises(ValueError, match="already registered"):
        register_env("counter-test", counter_env)
    with pytest.raises(ValueError, match="name"):
        register_env("a:b", counter_env)
    env = make_env("counter-test", num_envs=3, length=4)
    obs, _, _ = env.reset()
    assert obs["observation"].shape == (3, 2)
    assert env.max_episode_steps is None
    env.close()


def test_sync_and_async_give_identical_seeded_rollouts():
    runs = []
    for vectorization in ("sync", "async"):
        env = make_env(
            "dark-key-door", num_envs=3, seed=11, vectorization=vectorization, size=5, episode_length=6, horizon=15
        )
        obs, _, _ = env.reset()
        trace = [obs["observation"].copy()]
        rng = np.random.default_rng(0)
        for _ in range(20):
            r = env.step(rng.integers(0, 5, 3))
            trace += [r.obs["observation"].copy(), r.rews.copy(), r.next_obs["observation"].copy()]
        env.close()
        runs.append(trace)
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_top_level_export():
    import amago_fast

    env = amago_fast.make_env("bandit", num_envs=2, seed=0)
    assert env.action_dim == 5 and env.max_episode_steps == 100
    env.close()


class _DictObsEnv(gym.Env):
    """Dict observation with a Discrete entry; ends after ``length`` steps."""

    def __init__(self, length):
        self.length = length
        self.observation_space = spaces.Dict({"pos": spaces.Discrete(5), "vec": spaces.Box(-10, 10, (2,), np.float32)})
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return {"pos": 4, "vec": np.array([-1, -1], np.float32)}, {}

    def step(self, action):
        self.t += 1
        obs = {"pos": self.t % 5, "vec": np.array([self.t, action], np.float32)}
        return obs, 1.0, self.t >= self.length, False, {"nested": {"t": self.t}}


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_dict_observations_and_nested_infos_with_final_obs_swap(vectorization):
    env = AmagoVecEnv([lambda: _DictObsEnv(1), lambda: _DictObsEnv(3)], vectorization)
    try:
        assert set(env.observation_space.spaces) == {"pos", "vec"}
        obs, _, _ = env.reset()
        np.testing.assert_array_equal(obs["pos"], [[0, 0, 0, 0, 1]] * 2)
        r = env.step([1, 0])
        np.testing.assert_array_equal(r.done, [True, False])
        np.testing.assert_array_equal(r.obs["pos"], [[0, 1, 0, 0, 0]] * 2)  # final obs
        np.testing.assert_array_equal(r.obs["vec"], [[1, 1], [1, 0]])
        np.testing.assert_array_equal(r.next_obs["pos"][0], [0, 0, 0, 0, 1])  # reset obs
        np.testing.assert_array_equal(r.next_obs["vec"][0], [-1, -1])
        assert r.infos[0]["nested"]["t"] == 1 and r.infos[1]["nested"]["t"] == 1
        assert r.infos[0]["episode_length"] == 1 and "success" not in r.infos[0]
    finally:
        env.close()

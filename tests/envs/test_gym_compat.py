"""The gymnasium 0.29 / 1.x shims (amago_fast/envs/gym_compat.py); runs under either."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from amago_fast.envs import AmagoVecEnv, make_env
from amago_fast.envs import gym_compat as gc


def test_version_parse_and_flag_match_the_installed_gymnasium():
    assert gc._parse_version("0.29.1") == (0, 29, 1)
    assert gc._parse_version("1.0.0a2") == (1, 0, 0)
    assert gc._parse_version("1.2") == (1, 2, 0)
    assert gc.GYMNASIUM_VERSION == gc._parse_version(gym.__version__)
    import gymnasium.vector as gv

    assert gc.HAS_AUTORESET_MODE == hasattr(gv, "AutoresetMode")


def test_require_gymnasium_names_the_version_it_needs():
    with pytest.raises(
        gc.GymnasiumVersionError,
        match=r"feature X needs gymnasium>=1\.0\.0; "
        r"gymnasium 0\.29\.1 is installed",
    ):
        gc.require_gymnasium((1, 0), "feature X", installed=(0, 29, 1))
    gc.require_gymnasium((0, 29), "feature X", installed=(0, 29, 1))  # no error
    gc.require_gymnasium((1, 0), "feature X", installed=(1, 4, 0))
    gc.require_gymnasium(gc.MIN_GYMNASIUM, "amago_fast")  # the installed one is supported
    assert issubclass(gc.GymnasiumVersionError, ImportError)


def _info_1x():
    # what gymnasium 1.x SAME_STEP gives for 2 copies where copy 1 finished
    return {
        "final_obs": np.array([None, {"observation": np.array([7.0])}], dtype=object),
        "_final_obs": np.array([False, True]),
        "final_info": {"success": np.array([False, True]), "_success": np.array([False, True])},
        "_final_info": np.array([False, True]),
        "step_key": np.array([1, 2]),
        "_step_key": np.array([True, True]),
    }


def _info_029():
    # what gymnasium 0.29 gives for the same step
    return {
        "final_observation": np.array([None, {"observation": np.array([7.0])}], dtype=object),
        "_final_observation": np.array([False, True]),
        "final_info": np.array([None, {"success": True}], dtype=object),
        "_final_info": np.array([False, True]),
        "step_key": np.array([1, 2]),
        "_step_key": np.array([True, True]),
    }


@pytest.mark.parametrize("layout", [_info_1x, _info_029], ids=["gymnasium-1.x", "gymnasium-0.29"])
def test_final_step_and_unbatch_read_both_layouts(layout):
    info = layout()
    obs, final_info = gc.final_step(info, 1)
    np.testing.assert_array_equal(obs["observation"], [7.0])
    assert bool(final_info["success"]) is True
    # the finished-step keys never leak into the copy's current-step info
    assert gc.unbatch_info(info, 0) == {"step_key": 1}
    assert gc.unbatch_info(info, 1) == {"step_key": 2}
    assert gc.has_step_info(info)
    assert not gc.has_step_info({k: v for k, v in info.items() if "step_key" not in k})


def test_final_step_without_final_obs_is_a_clear_error():
    with pytest.raises(KeyError, match="no final observation"):
        gc.final_step({"step_key": np.array([1])}, 0)


def test_unbatch_info_respects_masks_and_nesting():
    info = {
        "a": np.array([1, 2]),
        "_a": np.array([True, False]),
        "nested": {"b": np.array([3, 4]), "_b": np.array([False, True])},
        "_nested": np.array([True, True]),
    }
    assert gc.unbatch_info(info, 0) == {"a": 1, "nested": {}}
    assert gc.unbatch_info(info, 1) == {"nested": {"b": 4}}


class _Counter(gym.Env):
    """Obs = steps taken; ends after `length` steps with info success = (length is even)."""

    def __init__(self, length: int = 3):
        self.length = length
        self.observation_space = spaces.Box(0, 100, (1,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {"phase": "reset"}

    def step(self, action):
        self.t += 1
        done = self.t >= self.length
        info = {"success": self.length % 2 == 0} if done else {"phase": "mid"}
        return np.array([float(self.t)], np.float32), 1.0, done, False, info


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_vector_env_gives_true_final_obs_and_final_info(vectorization):
    """Under the installed gymnasium: the stored view holds the real last observation, the
    agent's view the reset one, and the episode's final info reaches infos."""
    env = AmagoVecEnv([lambda: _Counter(2), lambda: _Counter(3)], vectorization=vectorization, seed=0)
    try:
        env.reset()
        env.step(np.zeros(2, np.int64))
        res = env.step(np.zeros(2, np.int64))  # copy 0 ends (length 2), copy 1 does not
        assert res.done.tolist() == [True, False]
        assert res.obs["observation"][:, 0].tolist() == [2.0, 2.0]
        assert res.next_obs["observation"][:, 0].tolist() == [0.0, 2.0]
        assert res.next_time_idxs.tolist() == [0, 2]
        assert res.infos[0]["success"] is True and res.infos[0]["episode_length"] == 2
        assert "final_observation" not in res.infos[0] and "final_obs" not in res.infos[0]
        assert res.infos[1] == {"phase": "mid"}
        res = env.step(np.zeros(2, np.int64))  # copy 1 ends (length 3): success False
        assert res.done.tolist() == [False, True]
        assert res.obs["observation"][1, 0] == 3.0 and res.infos[1]["success"] is False
    finally:
        env.close()


def test_hidden_obs_keys_survive_gym_make_wrappers():
    """gymnasium 1.x wrappers do not forward attributes: the keys are read through them."""
    from amago_fast.envs.mazerunner import MazeRunner

    env_id = "AmagoFastCompatMazeRunner-v0"
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=MazeRunner, max_episode_steps=50)
    env = make_env(f"gym:{env_id}")
    try:
        assert env.hidden_obs_keys == ("achieved",)
    finally:
        env.close()

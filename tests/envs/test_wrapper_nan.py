"""NaN/inf from an env is caught in AmagoVecEnv: raised by name, or zeroed and flagged."""

import gymnasium as gym
import numpy as np
import pytest

from amago_fast.envs.wrapper import AmagoVecEnv, NonFiniteError


class BadValueEnv(gym.Env):
    """Episodes of 4 steps; at step `bad_step` of every episode puts `value` into `where`."""

    observation_space = gym.spaces.Box(-10, 10, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, where="reward", bad_step=2, value=np.nan):
        self.where, self.bad_step, self.value, self.t = where, bad_step, value, 0

    def _obs(self):
        o = np.full(2, self.t, np.float32)
        if self.where == "obs" and self.t == self.bad_step:
            o[1] = self.value
        return o

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        rew = self.value if self.where == "reward" and self.t == self.bad_step else 1.0
        return self._obs(), rew, self.t >= 4, False, {}


def _vec(n=2, **kw):
    return AmagoVecEnv([lambda: BadValueEnv(**kw)] * n, name="bad", seed=0)


@pytest.mark.parametrize(
    "where,value,match",
    [
        ("reward", np.nan, "NaN/inf reward"),
        ("obs", np.inf, r"observation\['observation'\]"),
        ("obs", -np.inf, "observation"),
    ],
)
def test_raise_mode_names_copy_field_and_step(where, value, match):
    env = _vec(where=where, value=value)
    env.reset()
    env.step(np.zeros(2, np.int64))
    with pytest.raises(NonFiniteError, match=match) as e:
        env.step(np.zeros(2, np.int64))
    assert "copy 0" in str(e.value) and "time step 2" in str(e.value) and "nonfinite='drop'" in str(e.value)
    env.close()


def test_nan_at_reset_is_raised():
    env = _vec(where="obs", bad_step=0)
    with pytest.raises(NonFiniteError, match="at reset"):
        env.reset()
    env.nonfinite = "flag"
    obs, _, _ = env.reset()
    assert env.reset_nonfinite.tolist() == [True, True] and np.isfinite(obs["observation"]).all()
    env.close()


def test_flag_mode_zeroes_and_marks_rows():
    env = _vec(where="reward")
    env.nonfinite = "flag"
    env.reset()
    r1 = env.step(np.zeros(2, np.int64))
    assert not r1.nonfinite.any() and not r1.next_nonfinite.any()
    r2 = env.step(np.zeros(2, np.int64))
    assert r2.nonfinite.all() and r2.next_nonfinite.all()  # the next row's rl2s holds the reward
    assert np.isfinite(r2.rews).all() and np.isfinite(r2.rl2s).all() and np.isfinite(r2.next_rl2s).all()
    r3 = env.step(np.zeros(2, np.int64))
    assert not r3.nonfinite.any()
    r4 = env.step(np.zeros(2, np.int64))  # episode ends: the return is finite (NaN zeroed)
    assert r4.done.all() and r4.infos[0]["episode_return"] == 3.0
    env.close()


def test_nan_in_final_obs_flags_the_stored_row_not_the_next_episode():
    env = _vec(where="obs", bad_step=4)
    env.nonfinite = "flag"
    env.reset()
    for _ in range(3):
        env.step(np.zeros(2, np.int64))
    r = env.step(np.zeros(2, np.int64))
    assert r.done.all() and r.nonfinite.all() and not r.next_nonfinite.any()
    assert np.isfinite(r.obs["observation"]).all()
    env.close()


def test_unknown_mode_is_refused():
    env = _vec()
    with pytest.raises(ValueError, match="nonfinite must be one of"):
        env.nonfinite = "ignore"
    env.close()

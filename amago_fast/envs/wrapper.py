"""Vectorized gymnasium envs in AMAGO's time-step format.

Each copy is wrapped in ``DictObservation`` (flat Dict-of-Box observations, see
``spaces.py``; a MultiDiscrete action space is flattened to one Discrete) and run by gymnasium's Sync/AsyncVectorEnv with same-step autoreset: when
a copy's episode ends, ``step`` already returns the first observation of the next episode
and the true final observation arrives in the info (``gym_compat.final_step`` reads it
for gymnasium 0.29 and 1.x). ``AmagoVecEnv`` turns
that into the two views the agent and the replay buffer need:

- the *true* next step of every copy (``obs``/``rl2s``/``time_idxs``: what gets stored,
  the final observation for a copy that just finished), and
- what the agent sees next (``next_*``: the new episode's first step for finished copies).

``rl2s`` = ``[previous reward, previous action vector]`` (zeros at an episode's first
step) and ``time_idxs`` counts steps since the episode (gymnasium episode) began.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np

from .gym_compat import final_step, has_step_info, make_vector_env, unbatch_info
from .spaces import OBS_KEY, ActionCodec, dict_observation_space, to_dict_obs

Obs = dict[str, np.ndarray]  # key -> (N, ...)


class DictObservation(gym.ObservationWrapper):
    """One env -> flat Dict-of-Box observations (see ``spaces.py`` for the mapping)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._orig_space = env.observation_space
        self.observation_space = dict_observation_space(env.observation_space)
        # the common case (one Box) skips the generic converter: it runs every step
        self._box_dtype = env.observation_space.dtype if isinstance(env.observation_space, gym.spaces.Box) else None

    def observation(self, observation: Any) -> dict[str, np.ndarray]:
        if self._box_dtype is not None:
            return {OBS_KEY: np.asarray(observation, dtype=self._box_dtype)}
        return to_dict_obs(self._orig_space, observation)


class FlatMultiDiscrete(gym.ActionWrapper):
    """MultiDiscrete(nvec) actions -> one Discrete(prod(nvec)) (row-major), so that agents
    with a categorical head can act in e.g. popgym's Battleship / MineSweeper."""

    MAX_ACTIONS = 4096  # beyond this a flat categorical is the wrong tool

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._nvec = np.asarray(env.action_space.nvec)
        self._start = np.asarray(env.action_space.start)
        n = int(np.prod(self._nvec))
        if self._nvec.ndim != 1 or n > self.MAX_ACTIONS:
            raise TypeError(
                f"action_space: MultiDiscrete {self._nvec.tolist()} is too large "
                f"to flatten (> {self.MAX_ACTIONS} joint actions or not 1-d)"
            )
        self.action_space = gym.spaces.Discrete(n)

    def action(self, action: Any) -> np.ndarray:
        idx = np.unravel_index(int(action), tuple(self._nvec))
        return (np.array(idx) + self._start).astype(np.int64)


def _wrap(env: gym.Env) -> gym.Env:
    if isinstance(env.action_space, gym.spaces.MultiDiscrete):
        env = FlatMultiDiscrete(env)
    return DictObservation(env)


@dataclass
class StepResult:
    """One vectorized step for N envs (A = action_dim)."""

    obs: Obs  # key -> (N, ...): true next observation (final obs for finished envs)
    rl2s: np.ndarray  # (N, 1+A) float32: [reward, action vector] of this step
    time_idxs: np.ndarray  # (N,) int64: time index of obs
    action_vecs: np.ndarray  # (N, A) float32: stored action vectors
    rews: np.ndarray  # (N,) float32
    terminated: np.ndarray  # (N,) bool
    truncated: np.ndarray  # (N,) bool
    done: np.ndarray  # (N,) bool = terminated | truncated
    next_obs: Obs  # key -> (N, ...): what the agent sees next (reset obs where done)
    next_rl2s: np.ndarray  # (N, 1+A) float32 (zeros where done)
    next_time_idxs: np.ndarray  # (N,) int64 (0 where done)
    infos: list  # per env dict; episode stats + "success" (if defined) where done
    nonfinite: np.ndarray | None = None  # (N,) bool: NaN/inf in obs or rews (zeroed, "flag" mode)
    next_nonfinite: np.ndarray | None = None  # (N,) bool: NaN/inf in next_obs / next_rl2s


NONFINITE_MODES = ("raise", "flag")


class NonFiniteError(ValueError):
    """An env returned NaN/inf in an observation or reward."""


def _bad_rows(x: np.ndarray) -> np.ndarray:
    """(N,) bool: rows of x (N, ...) holding NaN/inf (always False for integer dtypes)."""
    x = np.asarray(x)
    if x.dtype.kind not in "fc":
        return np.zeros(x.shape[0], bool)
    return ~np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1)


def _zeroed(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0) if x.dtype.kind in "fc" else x


class AmagoVecEnv:
    """N copies of one env in the AMAGO time-step format (see module docstring).

    Args:
        env_fns: one callable per copy returning a (single) gymnasium env.
        vectorization: "sync" (one process) or "async" (a subprocess per copy).
        seed: base seed used at the first ``reset`` (copy i gets seed + i).
        name: the env's name (for messages).
        max_episode_steps: episode length limit if known (sizes the agent's context).
        hidden_obs_keys: observation keys stored in replay but not shown to the policy.

    Attribute ``nonfinite`` says what a NaN/inf observation or reward does: "raise"
    (default) raises ``NonFiniteError`` naming the copy, the step and the field; "flag"
    zeroes the bad values (so the agent can still act) and marks the copies in
    ``StepResult.nonfinite`` / ``next_nonfinite`` and ``reset_nonfinite``, for a caller
    that drops those trajectories (the Trainer with ``TrainerConfig.nonfinite="drop"``).
    """

    def __init__(
        self,
        env_fns: Sequence[Callable[[], gym.Env]],
        vectorization: str = "sync",
        seed: int | None = None,
        name: str = "env",
        max_episode_steps: int | None = None,
        hidden_obs_keys: Sequence[str] = (),
    ):
        if vectorization not in ("sync", "async"):
            raise ValueError(f"vectorization must be 'sync' or 'async', got {vectorization!r}")
        if len(env_fns) < 1:
            raise ValueError("num_envs must be >= 1")
        fns = [lambda fn=fn: _wrap(fn()) for fn in env_fns]
        self._vec = make_vector_env(fns, vectorization)  # same-step autoreset, any gymnasium
        self.name = name
        self.num_envs = len(env_fns)
        self.vectorization = vectorization
        self.observation_space: gym.spaces.Dict = self._vec.single_observation_space
        self.action_space: gym.spaces.Space = self._vec.single_action_space
        self._codec = ActionCodec(self.action_space, self.num_envs)
        self.action_dim = self._codec.dim
        self.max_episode_steps = max_episode_steps
        # keys the env marks as not for the policy (e.g. MazeRunner's "achieved", kept
        # in replay for hindsight relabeling)
        self.hidden_obs_keys: tuple = tuple(hidden_obs_keys)
        self.policy_observation_space = gym.spaces.Dict(
            {k: v for k, v in self.observation_space.spaces.items() if k not in self.hidden_obs_keys}
        )
        self._seed = seed
        self._t = np.zeros(self.num_envs, np.int64)  # time index of the current obs
        self._ep_return = np.zeros(self.num_envs, np.float64)
        self._needs_reset = True
        self.reset_infos: list[dict] = []  # per env info from the last reset()
        self._nonfinite = "raise"
        self.reset_nonfinite = np.zeros(self.num_envs, bool)  # (N,) from the last reset()

    @property
    def nonfinite(self) -> str:
        """ "raise" or "flag": what a NaN/inf observation or reward does (see class doc)."""
        return self._nonfinite

    @nonfinite.setter
    def nonfinite(self, mode: str) -> None:
        if mode not in NONFINITE_MODES:
            raise ValueError(f"nonfinite must be one of {NONFINITE_MODES}, got {mode!r}")
        self._nonfinite = mode

    def _obs_bad(self, obs: Obs) -> tuple[np.ndarray, dict]:
        """(N,) bad-row mask over every obs key, and {key: (N,) mask} of the keys with NaN/inf."""
        per_key = {k: m for k, v in obs.items() if (m := _bad_rows(v)).any()}
        bad = np.zeros(self.num_envs, bool)
        for m in per_key.values():
            bad |= m
        return bad, per_key

    def _refuse(self, what: str, mask: np.ndarray, when: str) -> None:
        i = int(np.flatnonzero(mask)[0])
        raise NonFiniteError(
            f"env {self.name!r} copy {i} returned a NaN/inf {what} {when}; set "
            "TrainerConfig.nonfinite='drop' (env.nonfinite='flag') to drop such trajectories instead"
        )

    def reset(self, seed: int | None = None) -> tuple[Obs, np.ndarray, np.ndarray]:
        """Reset every copy -> (obs key -> (N, ...), rl2s (N, 1+A) zeros, time_idxs (N,) zeros)."""
        if seed is None and self._seed is not None:
            seed, self._seed = self._seed, None  # the constructor's seed is used once
        obs, info = self._vec.reset(seed=seed)
        bad, per_key = self._obs_bad(obs)
        if bad.any():
            if self._nonfinite == "raise":
                key = next(iter(per_key))
                self._refuse(f"observation[{key!r}]", per_key[key], "at reset")
            obs = {k: _zeroed(v) for k, v in obs.items()}
        self.reset_nonfinite = bad
        if seed is not None:
            self.action_space.seed(seed)
        self._t[:] = 0
        self._ep_return[:] = 0.0
        self._needs_reset = False
        self.reset_infos = [unbatch_info(info, i) for i in range(self.num_envs)]
        rl2s = np.zeros((self.num_envs, 1 + self.action_dim), np.float32)
        return obs, rl2s, self._t.copy()

    def step(self, actions: Any) -> StepResult:
        """Step every copy with the agent's raw actions (see ``spaces.ActionCodec``)."""
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        env_actions, vecs = self._codec.encode(actions)  # validates before stepping
        next_obs, rews, terminated, truncated, info = self._vec.step(env_actions)
        rews = np.asarray(rews, np.float32)
        terminated = np.asarray(terminated, bool)
        truncated = np.asarray(truncated, bool)
        done = terminated | truncated
        if done.any():  # the stored view: final observations for copies that just finished
            stored = {k: v.copy() for k, v in next_obs.items()}
            final_infos = {}
            for i in np.flatnonzero(done):
                final_obs_i, final_infos[i] = final_step(info, i)
                for k in stored:
                    stored[k][i] = final_obs_i[k]
        else:
            stored = next_obs
        bad, bad_keys = self._obs_bad(stored)
        bad_rew = _bad_rows(rews)
        reset_bad = self._obs_bad(next_obs)[0] if done.any() else bad
        next_bad = np.where(done, reset_bad, bad | bad_rew)
        bad |= bad_rew
        if bad.any() or next_bad.any():
            if self._nonfinite == "raise":
                when = f"at time step {int(self._t[np.flatnonzero(bad | next_bad)[0]]) + 1}"
                if bad_rew.any():
                    self._refuse("reward", bad_rew, when)
                if bad_keys:
                    key = next(iter(bad_keys))
                    self._refuse(f"observation[{key!r}]", bad_keys[key], when)
                self._refuse("observation (first of its next episode)", next_bad, "at autoreset")
            rews = _zeroed(rews)
            stored = {k: _zeroed(v) for k, v in stored.items()}
            next_obs = {k: _zeroed(v) for k, v in next_obs.items()}
            if not done.any():
                stored = next_obs
        self._t += 1
        self._ep_return += rews
        rl2s = np.concatenate([rews[:, None], vecs], axis=1)  # (N, 1+A)
        time_idxs = self._t.copy()
        infos = [{} for _ in range(self.num_envs)]
        obs = stored
        if done.any():
            for i in np.flatnonzero(done):
                ep_info = final_infos[i]
                if "success" not in ep_info and "is_success" in ep_info:
                    ep_info["success"] = ep_info["is_success"]
                if "success" in ep_info:
                    ep_info["success"] = bool(ep_info["success"])
                ep_info["episode_return"] = float(self._ep_return[i])
                ep_info["episode_length"] = int(self._t[i])
                infos[i] = ep_info
            next_rl2s = rl2s.copy()
            next_rl2s[done] = 0.0
            self._t[done] = 0
            self._ep_return[done] = 0.0
        else:
            obs, next_rl2s = next_obs, rl2s
        if has_step_info(info):
            for i in np.flatnonzero(~done):
                infos[i] = unbatch_info(info, i)
        return StepResult(
            obs=obs,
            rl2s=rl2s,
            time_idxs=time_idxs,
            action_vecs=vecs,
            rews=rews,
            terminated=terminated,
            truncated=truncated,
            done=done,
            next_obs=next_obs,
            next_rl2s=next_rl2s,
            next_time_idxs=self._t.copy(),
            infos=infos,
            nonfinite=bad,
            next_nonfinite=next_bad,
        )

    def close(self) -> None:
        """Close every copy (and its subprocess for async)."""
        self._vec.close()

    def __enter__(self) -> "AmagoVecEnv":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"AmagoVecEnv({self.name!r}, num_envs={self.num_envs}, "
            f"vectorization={self.vectorization!r}, action_dim={self.action_dim}, "
            f"max_episode_steps={self.max_episode_steps})"
        )

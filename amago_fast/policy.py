"""Using a trained policy: ``load_policy(run_dir)`` -> ``Policy`` with ``predict`` / ``reset``.

    policy = amago_fast.load_policy("runs/tmaze20")      # one env; num_envs=N for a batch
    obs, info = env.reset()
    policy.reset()
    action = policy.predict(obs)                         # first step of an episode
    obs, reward, terminated, truncated, info = env.step(action)
    action = policy.predict(obs, reward)                 # every later step: last reward

The agent is in-context: it conditions on its own past (observations, its previous
action, the previous reward), kept in a KV cache (Transformer) or hidden state (GRU).
``Policy`` keeps that state, the previous action and each env's step count for you;
call ``reset()`` (or ``reset(env_ids)``) when episodes begin.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np


@dataclasses.dataclass
class LoadedRun:
    """A run directory's agent with its latest weights, and the configs it was trained with."""

    agent: Any  # amago_fast.agent.Agent
    trainer_config: Any  # amago_fast.trainer.TrainerConfig
    checkpoint: Path


def _read_run_config(run_dir: Path) -> dict:
    path = run_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"run_dir: {run_dir} has no config.json (not a run directory)")
    data = json.loads(path.read_text())
    missing = [k for k in ("trainer", "agent") if not isinstance(data, dict) or k not in data]
    if missing:
        raise ValueError(f"run_dir: {path} has no {' and no '.join(repr(k) for k in missing)} section")
    return data


def damaged_checkpoints(ckpt_root: Path, used: Optional[Path]) -> list[Path]:
    """``step_*`` checkpoint directories newer than ``used`` (every one when None) that are
    not complete: a truncated or corrupt file (temporary ones are hidden ``.step_*``)."""
    from amago_fast.trainer.checkpoint import is_complete

    root = Path(ckpt_root)
    if not root.is_dir():
        return []
    steps = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_"))
    return [p for p in steps if (used is None or p.name > used.name) and not is_complete(p)]


def load_run(
    run_dir: Union[str, Path], device: str = "cpu", checkpoint: Optional[Union[str, Path]] = None
) -> LoadedRun:
    """Build the run's agent on ``device`` and load the weights of ``checkpoint`` (default:
    the latest). FileNotFoundError without config.json or a checkpoint, ValueError naming
    the file when a weights file is damaged."""
    from amago_fast.agent import Agent, AgentConfig
    from amago_fast.envs import make_env
    from amago_fast.trainer import TrainerConfig, latest_checkpoint, load_weights

    run_dir = Path(run_dir)
    saved = _read_run_config(run_dir)
    tcfg, acfg = TrainerConfig.from_dict(saved["trainer"]), AgentConfig.from_saved(saved["agent"])
    for module in tcfg.env_modules:  # the user's env registrations
        importlib.import_module(module)
    ckpt = Path(checkpoint) if checkpoint is not None else latest_checkpoint(run_dir / "checkpoints")
    if ckpt is None and damaged_checkpoints(run_dir / "checkpoints", None):
        names = [p.name for p in damaged_checkpoints(run_dir / "checkpoints", None)]
        raise ValueError(f"run_dir: every checkpoint of {run_dir} is damaged or truncated: {names}")
    if ckpt is None or not (ckpt / "weights.safetensors").is_file():
        raise FileNotFoundError(f"run_dir: {run_dir} has no checkpoint yet (checkpoints/ holds no weights.safetensors)")
    probe = make_env(tcfg.env, num_envs=1, **tcfg.env_args)
    try:
        agent = Agent(probe.policy_observation_space, probe.action_space, acfg, device=device)
    finally:
        probe.close()
    try:
        load_weights(agent, ckpt)
    except Exception as e:  # safetensors' error for a truncated or corrupt file
        if type(e).__name__ != "SafetensorError" and not isinstance(e, OSError):
            raise
        raise ValueError(f"checkpoint file {ckpt / 'weights.safetensors'} is damaged or truncated ({e})") from None
    return LoadedRun(agent=agent, trainer_config=tcfg, checkpoint=ckpt)


class Policy:
    """A trained agent acting in one env (``num_envs=None``: unbatched observations and
    actions) or a batch of N envs (observations with a leading N axis, N actions).

    predict(obs, reward) -> action: ``obs`` is what the gymnasium env returned (its own
    space: Box, Discrete, Dict, ...); ``reward`` is the reward of the previous step (None or
    ignored at an episode's first step). Actions are in the env's action space.
    """

    def __init__(self, agent, obs_space, action_space, num_envs: Optional[int] = None, sample: bool = False):
        from gymnasium import spaces

        from amago_fast.envs.spaces import ActionCodec

        if num_envs is not None and (isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1):
            raise ValueError(f"num_envs must be None or an int >= 1, got {num_envs!r}")
        self.agent, self.sample = agent, sample
        self.batched = num_envs is not None
        self.num_envs = num_envs or 1
        self.observation_space = obs_space
        self.action_space = action_space
        self._multi = isinstance(action_space, spaces.MultiDiscrete)
        flat = spaces.Discrete(int(np.prod(action_space.nvec))) if self._multi else action_space
        self._codec = ActionCodec(flat, self.num_envs)
        self._keys = list(agent.tstep.keys)
        self.reset()

    def reset(self, env_ids: Optional[Sequence[int]] = None) -> None:
        """Start new episodes in env_ids (default: every env): empty context, step 0."""
        if env_ids is None:
            self._state = self.agent.init_state(self.num_envs)
            self._t = np.zeros(self.num_envs, np.int64)
            self._prev_vec = np.zeros((self.num_envs, self._codec.dim), np.float32)
            return
        ids = np.asarray(env_ids)
        if ids.dtype == bool:
            ids = np.flatnonzero(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_envs):
            raise ValueError(f"env_ids must lie in [0, {self.num_envs}), got {ids.tolist()}")
        self.agent.reset_state(self._state, ids)
        self._t[ids] = 0
        self._prev_vec[ids] = 0.0

    def _dict_obs(self, obs: Any) -> dict[str, np.ndarray]:
        from amago_fast.envs.spaces import to_dict_obs

        items = (
            [obs]
            if not self.batched
            else (
                [{k: v[i] for k, v in obs.items()} for i in range(self.num_envs)]
                if isinstance(obs, dict)
                else list(obs)
            )
        )
        if len(items) != self.num_envs:
            raise ValueError(f"obs: expected {self.num_envs} observations (leading axis), got {len(items)}")
        converted = [to_dict_obs(self.observation_space, o) for o in items]
        return {k: np.stack([c[k] for c in converted]) for k in self._keys}

    def predict(self, obs: Any, reward: Any = None) -> Any:
        """The action(s) for obs; reward: the previous step's reward(s), needed after step 0."""
        obs_dict = self._dict_obs(obs)  # validates the batch size
        rewards = np.zeros(self.num_envs, np.float32)
        later = self._t > 0
        if later.any():
            if reward is None:
                raise ValueError(
                    "reward: pass the previous step's reward (only an episode's first step, "
                    "right after reset(), has none)"
                )
            rewards = np.asarray(reward, np.float32).reshape(-1).copy()
            if rewards.shape != (self.num_envs,):
                raise ValueError(f"reward: expected {self.num_envs} rewards, got shape {np.shape(reward)}")
            rewards[~later] = 0.0
        rl2s = np.concatenate([rewards[:, None], self._prev_vec], axis=1)  # (N, 1+A)
        raw, self._state = self.agent.get_actions(obs_dict, rl2s, self._t.copy(), self._state, sample=self.sample)
        env_actions, self._prev_vec = self._codec.encode(raw)
        self._t += 1
        if self._multi:  # the agent acts in the flattened Discrete, as the training wrapper does
            nvec = np.asarray(self.action_space.nvec)
            env_actions = np.stack(np.unravel_index(env_actions, tuple(nvec)), -1) + self.action_space.start
        return env_actions if self.batched else env_actions[0]


def load_policy(
    run_dir: Union[str, Path],
    num_envs: Optional[int] = None,
    device: str = "cpu",
    sample: bool = False,
    checkpoint: Optional[Union[str, Path]] = None,
) -> Policy:
    """The policy of a run directory (latest checkpoint) ready to ``predict``.

    Args:
        run_dir: a directory written by ``amago-fast train`` / ``Trainer``.
        num_envs: None for one env (unbatched obs and actions), N for a batch of N envs.
        device: where the agent runs ("cpu" or "cuda").
        sample: sample actions (True) or take the policy's mode (False, as ``eval``).
        checkpoint: a specific checkpoint directory instead of the latest.
    """
    from amago_fast.envs import resolve_env

    run = load_run(run_dir, device=device, checkpoint=checkpoint)
    tcfg = run.trainer_config
    raw_env = resolve_env(tcfg.env, tcfg.env_args)(**tcfg.env_args)  # the user-facing spaces
    try:
        obs_space, action_space = raw_env.observation_space, raw_env.action_space
    finally:
        raw_env.close()
    return Policy(run.agent, obs_space, action_space, num_envs=num_envs, sample=sample)

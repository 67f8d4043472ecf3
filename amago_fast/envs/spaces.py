"""Space conversions for the AMAGO time-step format.

Observations: every env is seen through a flat ``gymnasium.spaces.Dict`` of ``Box``
entries (a non-dict observation lives under the key ``"observation"``; a ``Discrete``
observation becomes a one-hot float32 vector, ``MultiDiscrete`` a concatenation of
one-hots, ``MultiBinary`` an int8 0/1 vector, ``Box`` keeps its dtype and shape, a
``Tuple`` the float32 concatenation of its converted, flattened parts).

Actions: ``ActionCodec`` turns the agent's raw actions into (a) what the env receives and
(b) the float32 action vector that is stored and fed back through ``rl2s``:

- ``Discrete(n, start)``: agent gives an index in ``[0, n)`` (int, shape ``(N,)``), the env
  gets ``index + start``, the stored vector is the one-hot ``(N, n)``;
- ``Box``: agent gives floats in ``[-1, 1]`` of shape ``(N, *shape)`` or ``(N, prod(shape))``;
  they are clipped to ``[-1, 1]`` (that clipped value is stored) and rescaled linearly
  to the env's bounds. A Box with any infinite bound is passed through unscaled;
- ``MultiBinary(n)``: agent gives 0/1 of shape ``(N, n)``; stored as float 0/1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

OBS_KEY = "observation"  # key for envs whose observation is not a Dict


# ----------------------------------------------------------------------------- observations
def _convert_obs_space(space: spaces.Space, name: str) -> spaces.Box:
    if isinstance(space, spaces.Box):
        return space
    if isinstance(space, spaces.Discrete):
        return spaces.Box(0.0, 1.0, (int(space.n),), np.float32)
    if isinstance(space, spaces.MultiDiscrete):
        if space.nvec.ndim != 1:
            raise TypeError(f"observation {name!r}: only 1-d MultiDiscrete is supported")
        return spaces.Box(0.0, 1.0, (int(space.nvec.sum()),), np.float32)
    if isinstance(space, spaces.MultiBinary):
        return spaces.Box(0, 1, tuple(np.atleast_1d(space.n)), np.int8)
    if isinstance(space, spaces.Tuple):
        parts = [_convert_obs_space(s, f"{name}[{i}]") for i, s in enumerate(space.spaces)]
        if any(isinstance(s, spaces.Tuple) for s in space.spaces):
            raise TypeError(f"observation {name!r}: nested Tuple spaces are not supported")
        low = np.concatenate([np.broadcast_to(p.low, p.shape).ravel() for p in parts])
        high = np.concatenate([np.broadcast_to(p.high, p.shape).ravel() for p in parts])
        return spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
    raise TypeError(
        f"observation {name!r}: unsupported space {type(space).__name__} "
        "(supported: Box, Discrete, MultiDiscrete, MultiBinary, Tuple, or a flat Dict of them)"
    )


def dict_observation_space(space: spaces.Space) -> spaces.Dict:
    """The flat Dict-of-Box observation space the wrapper exposes for ``space``."""
    if isinstance(space, spaces.Dict):
        return spaces.Dict({k: _convert_obs_space(s, k) for k, s in space.spaces.items()})
    return spaces.Dict({OBS_KEY: _convert_obs_space(space, OBS_KEY)})


def _convert_obs(space: spaces.Space, value: Any) -> np.ndarray:
    if isinstance(space, spaces.Box):
        return np.asarray(value, dtype=space.dtype)
    if isinstance(space, spaces.Discrete):
        out = np.zeros(int(space.n), np.float32)
        out[int(value) - int(space.start)] = 1.0
        return out
    if isinstance(space, spaces.MultiDiscrete):
        out = np.zeros(int(space.nvec.sum()), np.float32)
        offsets = np.concatenate([[0], np.cumsum(space.nvec)[:-1]])
        out[offsets + np.asarray(value) - space.start] = 1.0
        return out
    if isinstance(space, spaces.MultiBinary):
        return np.asarray(value, dtype=np.int8)
    if isinstance(space, spaces.Tuple):
        return np.concatenate([_convert_obs(s, v).ravel().astype(np.float32) for s, v in zip(space.spaces, value)])
    raise TypeError(f"unsupported observation space {type(space).__name__}")


def to_dict_obs(space: spaces.Space, obs: Any) -> dict[str, np.ndarray]:
    """One env's observation -> the flat dict matching ``dict_observation_space(space)``."""
    if isinstance(space, spaces.Dict):
        return {k: _convert_obs(s, obs[k]) for k, s in space.spaces.items()}
    return {OBS_KEY: _convert_obs(space, obs)}


# ----------------------------------------------------------------------------- actions
def action_dim(space: spaces.Space) -> int:
    """Width A of the stored action vector for ``space``."""
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape))
    if isinstance(space, spaces.MultiBinary):
        return int(np.prod(space.n))
    raise TypeError(f"action_space: unsupported {type(space).__name__} (supported: Discrete, Box, MultiBinary)")


class ActionCodec:
    """Validates the agent's actions for N envs and maps them to (env actions, vectors)."""

    def __init__(self, space: spaces.Space, num_envs: int):
        self.space = space
        self.num_envs = num_envs
        self.dim = action_dim(space)  # also rejects unsupported spaces
        if isinstance(space, spaces.Box):
            low = space.low.astype(np.float64).reshape(-1)
            high = space.high.astype(np.float64).reshape(-1)
            self._scaled = bool(np.all(np.isfinite(low)) and np.all(np.isfinite(high)))
            self._low, self._span = low, high - low  # (A,)

    def encode(self, actions: Any) -> tuple[np.ndarray, np.ndarray]:
        """actions: the agent's batch (see module doc) -> (env_actions, vecs (N, A) float32)."""
        n, space = self.num_envs, self.space
        a = np.asarray(actions)
        if isinstance(space, spaces.Discrete):
            if a.shape == (n, 1):
                a = a[:, 0]
            if a.shape != (n,):
                raise ValueError(f"actions: expected shape ({n},) for Discrete, got {a.shape}")
            if a.dtype.kind not in "iu":
                if a.dtype.kind != "f" or not np.all(a == np.round(a)):
                    raise TypeError(f"actions: Discrete actions must be integers, got {a.dtype}")
                a = a.astype(np.int64)
            if a.size and (a.min() < 0 or a.max() >= space.n):
                raise ValueError(f"actions: Discrete index out of [0, {space.n}): {a.tolist()}")
            vecs = np.zeros((n, self.dim), np.float32)
            vecs[np.arange(n), a] = 1.0
            return (a + int(space.start)).astype(np.int64), vecs
        if isinstance(space, spaces.Box):
            if a.shape not in ((n, *space.shape), (n, self.dim)):
                raise ValueError(f"actions: expected shape {(n, *space.shape)} for Box, got {a.shape}")
            if a.dtype.kind not in "fiu":
                raise TypeError(f"actions: Box actions must be numeric, got {a.dtype}")
            flat = a.reshape(n, self.dim).astype(np.float64)
            if not np.all(np.isfinite(flat)):
                raise ValueError("actions: Box actions contain NaN or inf")
            if self._scaled:
                flat = np.clip(flat, -1.0, 1.0)
                raw = self._low + (flat + 1.0) * 0.5 * self._span
                # rounding can leave raw a hair outside [low, high]
                raw = np.clip(raw, self._low, self._low + self._span)
            else:
                raw = flat
            env_actions = raw.reshape(n, *space.shape).astype(space.dtype)
            return env_actions, flat.astype(np.float32)
        # MultiBinary
        if a.shape not in ((n, *np.atleast_1d(space.n)), (n, self.dim)):
            raise ValueError(f"actions: expected shape ({n}, {self.dim}) for MultiBinary, got {a.shape}")
        if a.size and not np.all((a == 0) | (a == 1)):
            raise ValueError("actions: MultiBinary actions must be 0 or 1")
        flat = a.reshape(n, self.dim)
        env_actions = flat.reshape(n, *np.atleast_1d(space.n)).astype(np.int8)
        return env_actions, flat.astype(np.float32)

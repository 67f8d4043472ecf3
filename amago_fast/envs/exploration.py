"""Epsilon-greedy exploration over N parallel envs, annealed by env steps (AMAGO-style).

Every env has its own epsilon: at the start of each of its episodes it draws a scale
``u ~ U[0, 1)`` and explores with ``u * ceiling`` (AMAGO's ``randomize_eps``), where the
ceiling anneals linearly from ``eps_start`` to ``eps_end`` over ``anneal_steps`` total env
steps, so actors spread over [0, ceiling): some near-greedy data in the buffer from the
start, and after annealing a mean epsilon of eps_end / 2. ``floor=True`` keeps every actor
at or above eps_end instead (``eps_end + u * (ceiling - eps_end)``, amago_fast < 0.2);
``randomize=False`` gives every env the ceiling itself.

Applied to the agent's raw actions (the format ``AmagoVecEnv.step`` takes):
Discrete -> a uniform random index with probability eps; MultiBinary -> a uniform random
bit vector with probability eps; Box (in [-1, 1]) -> ``"gaussian"``: add N(0, eps) noise
and clip, or ``"uniform"``: a uniform random action with probability eps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from .spaces import action_dim


class EpsilonGreedy:
    """Per-env annealed epsilon-greedy noise for ``num_envs`` copies of ``action_space``.

    Usage::

        explore = EpsilonGreedy(env.action_space, env.num_envs, seed=0)
        res = env.step(explore(actions))   # counts num_envs env steps
        explore.reset_envs(res.done)       # new epsilons for envs starting an episode
    """

    def __init__(
        self,
        action_space: spaces.Space,
        num_envs: int,
        eps_start: float = 1.0,
        eps_end: float = 0.05,
        anneal_steps: int = 1_000_000,
        randomize: bool = True,
        box_noise: str = "gaussian",
        seed: int | None = None,
        floor: bool = False,
    ):
        if not 0.0 <= eps_end <= eps_start <= 1.0:
            raise ValueError(f"need 0 <= eps_end <= eps_start <= 1, got eps_start={eps_start}, eps_end={eps_end}")
        if anneal_steps < 0:
            raise ValueError(f"anneal_steps must be >= 0, got {anneal_steps}")
        if box_noise not in ("gaussian", "uniform"):
            raise ValueError(f"box_noise must be 'gaussian' or 'uniform', got {box_noise!r}")
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.action_space = action_space
        self.dim = action_dim(action_space)  # rejects unsupported spaces
        self.num_envs = int(num_envs)
        self.eps_start, self.eps_end = float(eps_start), float(eps_end)
        self.anneal_steps = int(anneal_steps)
        self.randomize, self.floor = bool(randomize), bool(floor)
        self.box_noise = box_noise
        self.env_steps = 0  # total env steps taken through this object
        self._rng = np.random.default_rng(seed)
        self._scale = np.ones(self.num_envs)  # (N,) u_i, redrawn per episode
        self.reset_envs(np.ones(self.num_envs, bool))

    def ceiling(self) -> float:
        """The annealed maximum epsilon at the current env step."""
        if self.anneal_steps == 0:
            return self.eps_end
        frac = min(self.env_steps / self.anneal_steps, 1.0)
        return self.eps_start + frac * (self.eps_end - self.eps_start)

    @property
    def epsilon(self) -> np.ndarray:
        """(N,) current per-env epsilon."""
        if self.floor:
            return self.eps_end + self._scale * (self.ceiling() - self.eps_end)
        return self._scale * self.ceiling()

    def reset_envs(self, which: Any) -> None:
        """Redraw the epsilon scale of envs ``which`` (bool mask (N,) or index array)."""
        which = np.asarray(which)
        idx = np.flatnonzero(which) if which.dtype == bool else which.astype(np.int64)
        if which.dtype == bool and which.shape != (self.num_envs,):
            raise ValueError(f"which: bool mask must have shape ({self.num_envs},)")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_envs):
            raise ValueError(f"which: env index out of range [0, {self.num_envs})")
        if self.randomize:
            self._scale[idx] = self._rng.random(idx.size)

    def __call__(self, actions: Any) -> np.ndarray:
        """actions: (N,) Discrete indices or (N, ...) Box/MultiBinary -> explored copy."""
        eps = self.epsilon  # (N,)
        n, space, rng = self.num_envs, self.action_space, self._rng
        a = np.array(actions, copy=True)
        if a.shape[:1] != (n,):
            raise ValueError(f"actions: expected leading dimension {n}, got shape {a.shape}")
        explore = np.flatnonzero(rng.random(n) < eps)  # (k,) envs acting randomly
        if isinstance(space, spaces.Discrete):
            a[explore] = rng.integers(0, space.n, size=(explore.size,) + a.shape[1:])
        elif isinstance(space, spaces.MultiBinary):
            a[explore] = rng.integers(0, 2, size=(explore.size,) + a.shape[1:])
        elif self.box_noise == "gaussian":
            noise = rng.normal(size=a.shape) * eps.reshape((n,) + (1,) * (a.ndim - 1))
            a = np.clip(a + noise, -1.0, 1.0).astype(a.dtype)
        else:
            a[explore] = rng.uniform(-1.0, 1.0, size=(explore.size,) + a.shape[1:])
        self.env_steps += n
        return a

    def state_dict(self) -> dict:
        """JSON-serialisable state (for exact resume)."""
        return {"env_steps": self.env_steps, "scale": self._scale.tolist(), "rng": self._rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()`` output."""
        scale = np.asarray(state["scale"], np.float64)
        if scale.shape != (self.num_envs,):
            raise ValueError(f"state: scale has shape {scale.shape}, expected ({self.num_envs},)")
        self.env_steps = int(state["env_steps"])
        self._scale = scale
        self._rng.bit_generator.state = state["rng"]

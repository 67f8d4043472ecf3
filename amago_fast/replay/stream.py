"""StreamWriter: per-step writes from N vectorized envs into a ReplayBuffer.

Each env has an open trajectory staged in per-env arrays (vectorized across envs, one
numpy assignment per field per step); it is committed to the native store when the env
ends it (terminal/truncation) or when it reaches ``max_traj_len`` transitions, in which
case a new trajectory continues from its last observation (AMAGO's save-every
behaviour: the last row, rl2s and time index included, becomes row 0 of the next one).
Open trajectories live only here: they are not part of ``save()`` snapshots.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .spec import OBS_PREFIX, check_array, one_hot_actions


class StreamWriter:
    """Write one transition per env per step; see ``ReplayBuffer.stream``."""

    def __init__(self, buf, num_envs: int):
        self.buf, self.num_envs = buf, int(num_envs)
        self._cap = buf.max_traj_len or 64  # staged transitions per env (grows if unbounded)
        self._stage = [np.zeros((self.num_envs, self._cap + 1) + f.shape, f.dtype) for f in buf.fields]
        self._len = np.zeros(self.num_envs, np.int64)  # transitions staged per env
        self._open = np.zeros(self.num_envs, np.bool_)

    @property
    def open_lengths(self) -> np.ndarray:
        """(N,) transitions staged per env (-1 where no trajectory is open)."""
        return np.where(self._open, self._len, -1)

    def _env_ids(self, env_ids: Any) -> np.ndarray:
        if env_ids is None:
            return np.arange(self.num_envs)
        ids = np.asarray(env_ids).reshape(-1)
        if (
            ids.dtype.kind not in "iu"
            or len(np.unique(ids)) != len(ids)
            or (len(ids) and (ids.min() < 0 or ids.max() >= self.num_envs))
        ):
            raise ValueError(f"env_ids must be distinct ints in [0, {self.num_envs}), got {env_ids!r}")
        return ids.astype(np.int64)

    def _check_obs_like(self, obs: Any, rl2s: Any, time_idxs: Any, n: int) -> list:
        """(field index, array (n, ...)) for the obs-like fields of one step."""
        buf = self.buf
        if not isinstance(obs, Mapping):
            if len(buf.obs_keys) != 1:
                raise TypeError(f"obs must be a dict with keys {buf.obs_keys}")
            obs = {buf.obs_keys[0]: obs}
        if set(obs) != set(buf.obs_keys):
            raise ValueError(f"obs keys {sorted(obs)} do not match the buffer's {sorted(buf.obs_keys)}")
        given = {"rl2s": rl2s, "time_idxs": time_idxs}
        out = []
        for i, f in enumerate(buf.fields):
            if not f.obs_like:
                continue
            if f.name.startswith(OBS_PREFIX):
                key = f.name[len(OBS_PREFIX) :]
                x, name = obs[key], f"obs[{key!r}]"
            else:
                x, name = given[f.name], f.name
            out.append((i, check_array(x, name, f.dtype, (n,) + f.shape)))
        return out

    def begin(self, obs: Any, rl2s: Any, time_idxs: Any, env_ids: Any = None) -> list[int]:
        """Open a trajectory with its first observation for ``env_ids`` (all if None):
        obs {key: (n, ...)}, rl2s (n, 1+A), time_idxs (n,). An env that still has an open
        trajectory with transitions gets it committed first; returns those new ids."""
        ids = self._env_ids(env_ids)
        rows = self._check_obs_like(obs, rl2s, time_idxs, len(ids))
        committed = [self._commit(int(e)) for e in ids if self._open[e] and self._len[e] > 0]
        for i, a in rows:
            self._stage[i][ids, 0] = a
        self._len[ids] = 0
        self._open[ids] = True
        return committed

    def step(
        self, actions: Any, rews: Any, dones: Any, obs: Any, rl2s: Any, time_idxs: Any, end: Any = None
    ) -> list[int]:
        """One transition for every env: actions (N, A) (or (N,) indices for a Discrete
        buffer), rews (N,), dones (N,) bool, then
        the next obs {key: (N, ...)}, rl2s (N, 1+A), time_idxs (N,). ``end`` (N,) bool
        (default: dones) commits those envs' trajectories; they need ``begin`` again.
        Returns the ids of trajectories committed by this call."""
        N, buf = self.num_envs, self.buf
        closed = np.flatnonzero(~self._open)
        if len(closed):
            raise ValueError(f"env ids {closed.tolist()} have no open trajectory: call begin() first")
        if buf.discrete_actions:
            actions = one_hot_actions(actions, buf.action_dim)
        fields = {f.name: (i, f) for i, f in enumerate(buf.fields)}
        trans = {}
        for name, x in (("actions", actions), ("rews", rews), ("dones", dones)):
            i, f = fields[name]
            trans[i] = check_array(x, name, f.dtype, (N,) + f.shape)
        rows = self._check_obs_like(obs, rl2s, time_idxs, N)
        end = trans[fields["dones"][0]] if end is None else check_array(end, "end", np.bool_, (N,))
        if self._len.max() + 1 > self._cap:
            self._grow()
        envs, t = np.arange(N), self._len
        for i, a in trans.items():
            self._stage[i][envs, t] = a
        for i, a in rows:
            self._stage[i][envs, t + 1] = a
        self._len += 1
        committed = [self._commit(int(e)) for e in np.flatnonzero(end)]
        self._open[end] = False
        if buf.max_traj_len:
            for e in np.flatnonzero(self._open & (self._len >= buf.max_traj_len)):
                committed.append(self._commit(int(e)))
                self._continue_from_last(int(e))
        return committed

    def flush(self) -> list[int]:
        """Commit every open trajectory that has transitions and close it (e.g. at exit)."""
        committed = [self._commit(int(e)) for e in np.flatnonzero(self._open & (self._len > 0))]
        self._open[:] = False
        return committed

    def discard(self, env_ids: Any) -> None:
        """Close ``env_ids``' open trajectories without storing them (e.g. NaN data); they
        need ``begin`` again."""
        ids = self._env_ids(env_ids)
        self._len[ids] = 0
        self._open[ids] = False

    def _commit(self, e: int) -> int:
        T = int(self._len[e])
        arrays = [s[e, : (T + 1 if f.obs_like else T)] for s, f in zip(self._stage, self.buf.fields)]
        return self.buf._add_checked(arrays, T, False)

    def _continue_from_last(self, e: int) -> None:
        T = int(self._len[e])
        for s, f in zip(self._stage, self.buf.fields):
            if f.obs_like:
                s[e, 0] = s[e, T]
        self._len[e] = 0

    def _grow(self) -> None:
        # Only reached without max_traj_len: double the staged length (amortised O(1)).
        self._cap *= 2
        new = []
        for s in self._stage:
            g = np.zeros((s.shape[0], self._cap + 1) + s.shape[2:], s.dtype)
            g[:, : s.shape[1]] = s
            new.append(g)
        self._stage = new

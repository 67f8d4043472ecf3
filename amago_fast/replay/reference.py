"""Pure-NumPy reference for the C++ window sampler (csrc/replay/).

Same generator (xoshiro256** seeded by splitmix64), same draw order (all trajectory
choices, then all starts) and the docs/data.md ``padded_sampling`` rules, written as plainly
as possible. Tests compare the native sampler with it window for window; the buffer's
relabeling path also uses ``cut_windows`` to window relabeled trajectory copies.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

_M64 = (1 << 64) - 1
PADDING_MODES = ("none", "both", "left", "right")


def _splitmix64(x: int) -> tuple[int, int]:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return x, z ^ (z >> 31)


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & _M64


class Xoshiro256:
    """xoshiro256** exactly as csrc/replay/rng.h (slow, for tests)."""

    def __init__(self, seed: int = 0, state: Sequence[int] | None = None):
        if state is not None:
            self.s = [int(v) & _M64 for v in state]
        else:
            x, self.s = int(seed) & _M64, []
            for _ in range(4):
                x, z = _splitmix64(x)
                self.s.append(z)

    def next(self) -> int:
        s = self.s
        result = (_rotl((s[1] * 5) & _M64, 7) * 9) & _M64
        t = (s[1] << 17) & _M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    def below(self, n: int) -> int:
        """Unbiased integer in [0, n)."""
        threshold = (1 << 64) % n
        while True:
            r = self.next()
            if r >= threshold:
                return r % n


def start_bounds(n: int, L: int, mode: str) -> tuple[int, int]:
    """Inclusive range of the raw window start for a trajectory of n transitions."""
    if n <= L:
        return 0, 0
    return {
        "none": (0, n - L),
        "both": (-L + 1, n - 2),
        "left": (-L + 1, n - L),
        "right": (0, n - 2),
    }[mode]


def draw_windows(
    rng: Xoshiro256, lengths: Sequence[int], B: int, L: int, mode: str, by_length: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(trajectory indices (B,), raw starts (B,)) drawn as the native sampler does."""
    lengths = [int(n) for n in lengths]
    if by_length:
        cum = np.cumsum(lengths)
        idx = [int(np.searchsorted(cum, rng.below(int(cum[-1])), side="right")) for _ in range(B)]
    else:
        idx = [rng.below(len(lengths)) for _ in range(B)]
    starts = []
    for i in idx:
        lo, hi = start_bounds(lengths[i], L, mode)
        # the native sampler draws only when the window does not cover the trajectory
        starts.append(lo + rng.below(hi - lo + 1) if lengths[i] > L else 0)
    return np.asarray(idx, np.int64), np.asarray(starts, np.int64)


def cut_window(traj: dict, raw_start: int, L: int) -> dict:
    """One window from a trajectory dict (obs {key: (T+1,...)}, rl2s, time_idxs (T+1,),
    actions (T,A), rews (T,), dones (T,)), right-padded with zeros to L transitions."""
    n = len(traj["actions"])
    start, stop = max(raw_start, 0), raw_start + L
    obs_rows = slice(start, min(stop + 1, n + 1))  # obs-like: [start, stop+1)
    tr_rows = slice(start, min(stop, n))  # transitions: [start, stop)

    def pad(x: np.ndarray, rows: slice, out_len: int) -> np.ndarray:
        x = np.asarray(x)[rows]
        if x.ndim == 1:
            x = x[:, None]  # scalars per step become (..., 1)
        out = np.zeros((out_len,) + x.shape[1:], x.dtype)
        out[: len(x)] = x
        return out

    k = obs_rows.stop - obs_rows.start
    return {
        "obs": {key: pad(v, obs_rows, L + 1) for key, v in traj["obs"].items()},
        "rl2s": pad(traj["rl2s"], obs_rows, L + 1),
        "time_idxs": pad(traj["time_idxs"], obs_rows, L + 1),
        "actions": pad(traj["actions"], tr_rows, L),
        "rews": pad(traj["rews"], tr_rows, L),
        "dones": pad(traj["dones"], tr_rows, L),
        "mask": np.arange(L + 1) < k,
        "start": start,
    }


def cut_windows(trajs: Sequence[dict], raw_starts: Sequence[int], L: int) -> dict:
    """Stack ``cut_window`` over a batch: the Batch layout as numpy arrays."""
    ws = [cut_window(t, int(s), L) for t, s in zip(trajs, raw_starts)]
    out = {k: np.stack([w[k] for w in ws]) for k in ("rl2s", "time_idxs", "actions", "rews", "dones", "mask", "start")}
    out["obs"] = {key: np.stack([w["obs"][key] for w in ws]) for key in ws[0]["obs"]}
    return out


def sample_reference(
    trajs: Sequence[dict], rng: Xoshiro256, B: int, L: int, mode: str, by_length: bool = False
) -> tuple[np.ndarray, dict]:
    """(chosen trajectory indices, windows) drawing from ``rng`` like the native sampler."""
    idx, starts = draw_windows(rng, [len(t["actions"]) for t in trajs], B, L, mode, by_length)
    return idx, cut_windows([trajs[i] for i in idx], starts, L)

"""Pure-Python references for the C++ relabel kernels (csrc/relabel/).

Each function relabels ONE trajectory with plain Python loops over time steps, taking
the same pre-drawn uniforms as the kernel, and returns the same tuple. They exist to be
read and to be compared against: tests require the kernels to match them exactly.

Shapes (T transitions, k goals of dimension d, C = 1 + action dim):
  goals     (T+1, k, d+1) multi-goal: values in [..., :d], reached flag in [..., d]
            (T+1, d)      single-goal HER: the desired goal at each step
  achieved  (T+1, d)
  rl2s      (T+1, C) float32, column 0 = reward of the previous transition
  dones     (T,) bool
Both return (goals, rews (L,) float32, dones (L,) bool, rl2s (L+1, C), L), where L <= T
is the length after the cut; HER returns None for a trajectory it leaves untouched.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

STRATEGY_SOME, STRATEGY_ALL = 1, 2
HER_FINAL, HER_FUTURE, HER_EPISODE = 1, 2, 3

Result = tuple  # (goals, rews, dones, rl2s, new_len)


def within(a, g, tol: float) -> bool:
    """True when every coordinate of `a` is within `tol` of `g` (ints exact, floats in double)."""
    for x, y in zip(a.tolist(), g.tolist()):
        if not abs(x - y) <= tol:  # `not <=` so that NaN never matches
            return False
    return True


def uniform_index(u: float, n: int) -> int:
    """floor(u * n) clamped to {0..n-1}: the kernel's map from a uniform draw to an index."""
    return min(max(math.floor(u * float(n)), 0), n - 1)


def _replay(instruction: list, achieved: np.ndarray, tol: float) -> list[int]:
    """Rows t in 1..T where the active goal of `instruction` is reached, in order."""
    reached: list[int] = []
    for t in range(1, achieved.shape[0]):
        if len(reached) == len(instruction):
            break
        if within(achieved[t], instruction[len(reached)], tol):
            reached.append(t)
    return reached


def multigoal_reference(
    goals: np.ndarray,  # (T+1, k, d+1)
    achieved: np.ndarray,  # (T+1, d)
    rl2s: np.ndarray,  # (T+1, C)
    dones: np.ndarray,  # (T,)
    u: np.ndarray,  # (1 + k,) uniforms in [0, 1)
    strategy: int,
    tol: float,
) -> Result:
    """Multi-goal instruction relabeling of one trajectory (AMAGO's scheme, see module doc)."""
    T = achieved.shape[0] - 1
    k, d = goals.shape[1], goals.shape[2] - 1
    real_goals = [goals[0, i, :d] for i in range(k)]  # the real instruction

    # 1. real goals reached (in order) and where
    real_rows = _replay(real_goals, achieved, tol)
    n = len(real_rows)

    # 2. how many alternative goals
    h = uniform_index(float(u[0]), k - n + 1) if strategy == STRATEGY_SOME else k - n
    real_set = set(real_rows)
    candidates = [t for t in range(1, T + 1) if t not in real_set]
    h = min(h, len(candidates))

    # 3. h distinct candidate rows by a partial Fisher-Yates shuffle
    for j in range(h):
        r = j + uniform_index(float(u[1 + j]), len(candidates) - j)
        candidates[j], candidates[r] = candidates[r], candidates[j]
    picks = [(row, real_goals[i]) for i, row in enumerate(real_rows)]
    picks += [(row, achieved[row]) for row in candidates[:h]]

    # 4. new instruction: chosen goals sorted by row, then the remaining original slots
    picks.sort(key=lambda p: p[0])
    instruction = [g for _, g in picks] + real_goals[len(picks) :]

    # 5. replay under the new instruction and cut where the last goal is reached
    reached = _replay(instruction, achieved, tol)
    L = reached[-1] if len(reached) == k else T

    new_goals = np.zeros((L + 1, k, d + 1), dtype=goals.dtype)
    for t in range(L + 1):
        num_reached = sum(1 for row in reached if row <= t)
        for i in range(k):
            new_goals[t, i, :d] = instruction[i]
            new_goals[t, i, d] = 1 if i < num_reached else 0
    rews = np.zeros(L, dtype=np.float32)
    for row in reached:
        rews[row - 1] = 1.0
    new_dones = np.array(dones[:L], dtype=bool)
    if len(reached) == k:
        new_dones[L - 1] = True
    new_rl2s = np.array(rl2s[: L + 1], dtype=np.float32)
    for t in range(L):
        new_rl2s[t + 1, 0] = rews[t]
    return new_goals, rews, new_dones, new_rl2s, L


def her_reference(
    goals: np.ndarray,  # (T+1, d)
    achieved: np.ndarray,  # (T+1, d)
    rl2s: np.ndarray,  # (T+1, C)
    dones: np.ndarray,  # (T,)
    u: np.ndarray,  # (2,) uniforms in [0, 1)
    strategy: int,
    prob: float,
    tol: float,
    success_reward: float,
    failure_reward: float,
    terminate_on_success: bool,
) -> Optional[Result]:
    """Single-goal HER ("final" / "future" / "episode") of one trajectory; None = untouched."""
    T = achieved.shape[0] - 1
    if T < 1 or not float(u[0]) < prob:
        return None
    s = T if strategy == HER_FINAL else 1 + uniform_index(float(u[1]), T)
    L = s if strategy == HER_FUTURE else T
    g = achieved[s]
    terminated = False
    if terminate_on_success:
        for t in range(1, L + 1):
            if within(achieved[t], g, tol):
                L, terminated = t, True
                break

    new_goals = np.zeros((L + 1, achieved.shape[1]), dtype=goals.dtype)
    for t in range(L + 1):
        new_goals[t] = g
    rews = np.zeros(L, dtype=np.float32)
    for t in range(L):
        rews[t] = success_reward if within(achieved[t + 1], g, tol) else failure_reward
    new_dones = np.array(dones[:L], dtype=bool)
    if terminated:
        new_dones[L - 1] = True
    new_rl2s = np.array(rl2s[: L + 1], dtype=np.float32)
    for t in range(L):
        new_rl2s[t + 1, 0] = rews[t]
    return new_goals, rews, new_dones, new_rl2s, L

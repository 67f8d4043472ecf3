"""The built-in tasks are learnable through the whole env stack (AmagoVecEnv + EpsilonGreedy):
a tabular Q-learner given perfect memory of the first observation solves the T-Maze."""

from __future__ import annotations

import numpy as np

from amago_fast.envs import EpsilonGreedy, make_env


def test_tabular_q_with_memory_solves_tmaze_through_the_stack():
    n, horizon = 16, 10
    env = make_env("tmaze", num_envs=n, seed=0, horizon=horizon)
    explore = EpsilonGreedy(env.action_space, n, eps_start=1.0, eps_end=0.0, anneal_steps=60_000, seed=0)
    q = np.zeros((2, horizon + 2, 4))  # (remembered goal, time index, action)
    obs, _, t = env.reset()
    memory = (obs["observation"][:, 1] > 0).astype(int)  # goal side, seen only at t=0
    successes = []
    for _ in range(6000):
        greedy = q[memory, t].argmax(1)
        res = env.step(explore(greedy))
        acts = res.action_vecs.argmax(1)
        target = res.rews + np.where(res.terminated, 0.0, q[memory, np.minimum(res.time_idxs, horizon + 1)].max(1))
        q[memory, t, acts] += 0.5 * (target - q[memory, t, acts])
        explore.reset_envs(res.done)
        for i in np.flatnonzero(res.done):
            successes.append(res.infos[i]["success"])
        t = res.next_time_idxs
        new_goal = (res.next_obs["observation"][:, 1] > 0).astype(int)
        memory = np.where(res.done, new_goal, memory)
        assert np.all(res.next_time_idxs[res.done] == 0)
    env.close()
    late = successes[-200:]
    assert len(successes) > 1000 and np.mean(late) >= 0.95, np.mean(late)
    assert np.mean(successes[:200]) < 0.2  # it really learned: random play fails

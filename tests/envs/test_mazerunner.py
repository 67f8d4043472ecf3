"""MazeRunner: maze generation, observations, the reward rule, and that its rollouts are
exactly what the multi-goal relabeler expects."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from amago_fast.envs.mazerunner import MazeRunner, generate_maze
from amago_fast.relabel import MultiGoalRelabeler


def _reachable(walls, start):
    seen, todo = {start}, deque([start])
    while todo:
        r, c = todo.popleft()
        for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            nxt = (r + dr, c + dc)
            if not walls[nxt] and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _path_actions(walls, src, dst):
    """Shortest path from src to dst as MazeRunner actions (BFS)."""
    moves = {(-1, 0): 0, (1, 0): 1, (0, -1): 2, (0, 1): 3}
    prev, todo = {src: None}, deque([src])
    while todo:
        cur = todo.popleft()
        for dr, dc in moves:
            nxt = (cur[0] + dr, cur[1] + dc)
            if not walls[nxt] and nxt not in prev:
                prev[nxt] = cur
                todo.append(nxt)
    actions, cur = [], dst
    while prev[cur] is not None:
        p = prev[cur]
        actions.append(moves[(cur[0] - p[0], cur[1] - p[1])])
        cur = p
    return actions[::-1]


def test_gymnasium_env_checker():
    check_env(MazeRunner(size=7, goals=2), skip_render_check=True)


@pytest.mark.parametrize("size", [5, 9, 15])
def test_maze_is_closed_and_connected(size):
    rng = np.random.default_rng(size)
    for loops in (0.0, 0.3):
        walls = generate_maze(size, rng, loops)
        assert walls[0].all() and walls[-1].all() and walls[:, 0].all() and walls[:, -1].all()
        rooms = {(r, c) for r in range(1, size, 2) for c in range(1, size, 2)}
        assert rooms <= _reachable(walls, (size - 2, 1))
        assert walls[::2, ::2].all()  # pillars between rooms stay walls
        if loops == 0.0:  # a spanning tree: cells = 2 * rooms - 1
            assert (~walls).sum() == 2 * len(rooms) - 1


def test_observations_match_the_maze():
    env = MazeRunner(size=9, goals=3)
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    rng = np.random.default_rng(0)
    for t in range(60):
        r, c = env._pos
        expect = []
        for dr, dc in ((0, -1), (-1, 0), (0, 1), (1, 0)):
            n, rr, cc = 0, r + dr, c + dc
            while not env.walls[rr, cc]:
                n, rr, cc = n + 1, rr + dr, cc + dc
            expect.append(n / 9)
        np.testing.assert_allclose(obs["obs"][:4], expect, rtol=1e-6)
        assert obs["obs"][5] == np.float32(t / env.horizon)
        assert (obs["achieved"] == np.array([r, c], np.float32) / np.float32(8)).all()
        assert (obs["goals"][:, :2] * 8 == env.goal_cells).all()
        obs, *_ = env.step(int(rng.integers(4)))


def test_goals_are_distinct_rooms_and_not_the_start():
    env = MazeRunner(size=7, goals=8)  # 9 rooms: every room but the start
    env.reset(seed=1)
    cells = {tuple(c) for c in env.goal_cells}
    assert len(cells) == 8 and env.start not in cells
    assert all(r % 2 == 1 and c % 2 == 1 for r, c in cells)


def test_shortest_path_policy_collects_every_goal_in_order():
    env = MazeRunner(size=11, goals=3, horizon=400)
    obs, _ = env.reset(seed=7)
    pos, total, flags = env.start, 0.0, []
    for goal in map(tuple, env.goal_cells):
        for a in _path_actions(env.walls, pos, goal):
            obs, rew, term, trunc, info = env.step(a)
            total += rew
        pos = goal
        flags.append(obs["goals"][:, 2].copy())
    assert total == 3.0 and term and not trunc and info["success"]
    assert [f.tolist() for f in flags] == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]


def test_truncation_and_bump_flag():
    env = MazeRunner(size=5, goals=1, horizon=3)
    env.reset(seed=0)
    obs, _, _, _, _ = env.step(1)  # south of the start room is the border wall
    assert obs["obs"][4] == 1.0
    env.step(1)
    _, _, term, trunc, info = env.step(1)
    assert trunc and not term and info == {"success": False}


def test_seeding_is_deterministic_and_mazes_vary():
    a, b = MazeRunner(size=9), MazeRunner(size=9)
    a.reset(seed=5)
    b.reset(seed=5)
    assert (a.walls == b.walls).all() and (a.goal_cells == b.goal_cells).all()
    first, varied = a.walls.copy(), False
    for _ in range(5):
        a.reset()
        varied |= bool((a.walls != first).any())
    assert varied


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(size=8), "size"),
        (dict(size=3), "size"),
        (dict(goals=0), "goals"),
        (dict(size=5, goals=4), "goals"),
        (dict(horizon=0), "horizon"),
        (dict(loops=2.0), "loops"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MazeRunner(**kwargs)


def test_policy_must_not_see_achieved():
    assert MazeRunner.hidden_obs_keys == ("achieved",)
    assert "achieved" in MazeRunner().observation_space.spaces


def _rollout(env, seed, rng):
    """One episode of a random policy, stored in the trajectory-dict layout."""
    obs, _ = env.reset(seed=seed)
    keys = {k: [v] for k, v in obs.items()}
    rl2s, acts, rews, dones = [np.zeros(5, np.float32)], [], [], []
    while True:
        a = int(rng.integers(4))
        obs, r, term, trunc, _ = env.step(a)
        for k, v in obs.items():
            keys[k].append(v)
        onehot = np.eye(4, dtype=np.float32)[a]
        rl2s.append(np.concatenate([[r], onehot]).astype(np.float32))
        acts.append(onehot), rews.append(r), dones.append(term)
        if term or trunc:
            break
    traj = {k: np.stack(v) for k, v in keys.items()}
    traj.update(
        rl2s=np.stack(rl2s),
        actions=np.stack(acts),
        rews=np.array(rews, np.float32),
        dones=np.array(dones),
        time_idxs=np.arange(len(rews) + 1),
    )
    return traj


def test_rollouts_satisfy_the_relabeling_reward_rule():
    # With no hindsight goals (u0 = 0 -> h = 0) relabeling replays the real instruction;
    # it must reproduce the env's own rewards, flags and terminal exactly.
    env, rng = MazeRunner(size=5, goals=2, horizon=40), np.random.default_rng(0)
    trajs = [_rollout(env, s, rng) for s in range(30)]
    assert any(t["rews"].sum() > 0 for t in trajs) and any(t["dones"][-1] for t in trajs)
    relabeler = MultiGoalRelabeler(2, "some")
    fields = [relabeler._fields(t, i) for i, t in enumerate(trajs)]
    draws = np.zeros((len(trajs), 3))
    for t, (goals, rews, dones, rl2s, L) in zip(trajs, relabeler._run(fields, draws)):
        assert L == len(t["rews"])
        assert (goals == t["goals"]).all() and (rews == t["rews"]).all()
        assert (dones == t["dones"]).all() and (rl2s == t["rl2s"]).all()
    for t in relabeler.relabel(trajs, 0) + MultiGoalRelabeler(2, "all").relabel(trajs, 1):
        assert t["rews"].sum() >= 0 and t["rl2s"][1:, 0].tolist() == t["rews"].tolist()
    assert all(t["rews"].sum() == 2 for t in MultiGoalRelabeler(2, "all").relabel(trajs, 1))


def test_ansi_render_shows_agent_walls_and_pending_goals():
    env = MazeRunner(size=7, goals=2, render_mode="ansi")
    env.reset(seed=2)
    rows = env.render().splitlines()
    assert len(rows) == 7 and all(len(r) == 7 for r in rows)
    assert rows[5][1] == "@" and set(rows[0]) == {"#"}
    for i, (r, c) in enumerate(env.goal_cells):
        assert rows[r][c] == str(i)
    assert MazeRunner(size=7).render() is None

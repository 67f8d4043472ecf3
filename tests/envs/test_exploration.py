"""EpsilonGreedy: annealing schedule, per-env epsilons, action formats, exact resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gymnasium import spaces

from amago_fast.envs import EpsilonGreedy


def test_ceiling_anneals_linearly_with_env_steps():
    ex = EpsilonGreedy(spaces.Discrete(3), num_envs=4, eps_start=1.0, eps_end=0.1, anneal_steps=100, seed=0)
    assert ex.ceiling() == 1.0
    for _ in range(10):  # 10 calls x 4 envs = 40 env steps
        ex(np.zeros(4, int))
    assert ex.env_steps == 40
    assert ex.ceiling() == pytest.approx(1.0 - 0.4 * 0.9)
    for _ in range(100):
        ex(np.zeros(4, int))
    assert ex.ceiling() == pytest.approx(0.1)
    eps = ex.epsilon  # AMAGO: u * ceiling, spread over [0, eps_end) once annealed
    assert eps.shape == (4,) and np.all((eps >= 0.0) & (eps < 0.1))
    floored = EpsilonGreedy(
        spaces.Discrete(3), num_envs=4, eps_start=1.0, eps_end=0.1, anneal_steps=0, seed=0, floor=True
    )
    assert np.allclose(floored.epsilon, 0.1)


def test_epsilon_is_amagos_uniform_fraction_of_the_ceiling():
    ex = EpsilonGreedy(spaces.Discrete(3), num_envs=4000, eps_start=0.6, eps_end=0.6, seed=3)
    eps = ex.epsilon
    assert eps.min() < 0.01 and eps.max() < 0.6 and abs(eps.mean() - 0.3) < 0.02


def test_per_env_epsilons_differ_and_redraw_on_reset():
    ex = EpsilonGreedy(spaces.Discrete(3), num_envs=64, eps_end=0.0, seed=1)
    eps = ex.epsilon.copy()
    assert eps.min() < 0.2 and eps.max() > 0.8  # spread over [eps_end, ceiling]
    done = np.zeros(64, bool)
    done[:5] = True
    ex.reset_envs(done)
    np.testing.assert_array_equal(ex.epsilon[5:], eps[5:])
    assert not np.array_equal(ex.epsilon[:5], eps[:5])
    ex.reset_envs(np.array([7]))
    assert ex.epsilon[7] != eps[7]
    fixed = EpsilonGreedy(spaces.Discrete(3), num_envs=8, eps_start=0.7, randomize=False)
    np.testing.assert_allclose(fixed.epsilon, 0.7)


def test_discrete_rate_matches_epsilon():
    n = 20_000
    ex = EpsilonGreedy(spaces.Discrete(4), num_envs=n, eps_start=0.4, eps_end=0.4, randomize=False, seed=2)
    out = ex(np.zeros(n, int))
    # a random action equals the greedy one 1/4 of the time: changed = 0.4 * 3/4
    assert abs((out != 0).mean() - 0.3) < 0.015
    assert out.min() >= 0 and out.max() <= 3


def test_zero_epsilon_is_identity_and_inputs_are_not_mutated():
    for space, acts in [
        (spaces.Discrete(5), np.array([1, 4, 2])),
        (spaces.Box(-1, 1, (2,)), np.full((3, 2), 0.5, np.float32)),
        (spaces.MultiBinary(4), np.ones((3, 4), np.int8)),
    ]:
        ex = EpsilonGreedy(space, 3, eps_start=0.0, eps_end=0.0, seed=0)
        before = acts.copy()
        np.testing.assert_array_equal(ex(acts), acts)
        np.testing.assert_array_equal(acts, before)


def test_box_noise_modes_stay_in_bounds():
    box = spaces.Box(-1, 1, (3,))
    g = EpsilonGreedy(box, 1000, eps_start=0.5, eps_end=0.5, randomize=False, seed=0)
    out = g(np.zeros((1000, 3), np.float32))
    assert out.dtype == np.float32 and np.abs(out).max() <= 1.0
    assert abs(out.std() - 0.5) < 0.05
    u = EpsilonGreedy(box, 1000, eps_start=0.5, eps_end=0.5, randomize=False, box_noise="uniform", seed=0)
    out = u(np.zeros((1000, 3), np.float32))
    changed = np.any(out != 0, axis=1).mean()
    assert abs(changed - 0.5) < 0.06 and np.abs(out).max() <= 1.0


def test_multibinary_exploration():
    ex = EpsilonGreedy(spaces.MultiBinary(6), 5000, eps_start=1.0, eps_end=1.0, randomize=False, seed=0)
    out = ex(np.zeros((5000, 6), np.int8))
    assert set(np.unique(out)) == {0, 1} and abs(out.mean() - 0.5) < 0.02


def test_state_dict_resumes_exactly():
    a = EpsilonGreedy(spaces.Discrete(6), 8, anneal_steps=50, seed=3)
    for _ in range(5):
        a(np.zeros(8, int))
    state = json.loads(json.dumps(a.state_dict()))  # must survive JSON
    b = EpsilonGreedy(spaces.Discrete(6), 8, anneal_steps=50, seed=99)
    b.load_state_dict(state)
    for _ in range(5):
        np.testing.assert_array_equal(a(np.zeros(8, int)), b(np.zeros(8, int)))
        a.reset_envs([1, 2]), b.reset_envs([1, 2])
    np.testing.assert_array_equal(a.epsilon, b.epsilon)


def test_bad_arguments():
    with pytest.raises(ValueError, match="eps_end"):
        EpsilonGreedy(spaces.Discrete(2), 2, eps_start=0.1, eps_end=0.5)
    with pytest.raises(ValueError, match="box_noise"):
        EpsilonGreedy(spaces.Box(-1, 1, (1,)), 2, box_noise="ou")
    with pytest.raises(TypeError, match="action_space"):
        EpsilonGreedy(spaces.Tuple([spaces.Discrete(2)]), 2)
    ex = EpsilonGreedy(spaces.Discrete(2), 2)
    with pytest.raises(ValueError, match="actions"):
        ex(np.zeros(3, int))
    with pytest.raises(ValueError, match="which"):
        ex.reset_envs([5])


def test_discrete_column_actions_keep_their_shape():
    ex = EpsilonGreedy(spaces.Discrete(3), 50, eps_start=1.0, eps_end=1.0, seed=0)
    out = ex(np.zeros((50, 1), np.int64))
    assert out.shape == (50, 1) and out.dtype == np.int64 and out.max() > 0

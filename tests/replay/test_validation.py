"""Bad input -> a clear ValueError/TypeError naming the problem, before any native call."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from amago_fast import ReplayBuffer

OBS = {"x": ((2,), np.float32)}


def good(T=5, A=2):
    return dict(
        obs={"x": np.zeros((T + 1, 2), np.float32)},
        rl2s=np.zeros((T + 1, 1 + A), np.float32),
        time_idxs=np.arange(T + 1),
        actions=np.zeros((T, A), np.float32),
        rews=np.zeros(T, np.float32),
        dones=np.zeros(T, bool),
    )


@pytest.fixture
def buf():
    return ReplayBuffer(OBS, 2, capacity=100)


@pytest.mark.parametrize(
    "field,value,exc,match",
    [
        ("obs", {"y": np.zeros((6, 2), np.float32)}, ValueError, "obs keys"),
        ("obs", {"x": np.zeros((6, 3), np.float32)}, ValueError, r"obs\['x'\]: expected shape"),
        ("obs", {"x": np.zeros((5, 2), np.float32)}, ValueError, r"obs\['x'\]"),
        ("obs", {"x": np.zeros((6, 4), np.float32)[:, ::2]}, ValueError, "C-contiguous"),
        ("obs", {"x": np.zeros((6, 2), complex)}, TypeError, r"obs\['x'\]: dtype"),
        ("rl2s", np.zeros((6, 2), np.float32), ValueError, "rl2s"),
        ("time_idxs", np.zeros(6, np.float32), TypeError, "time_idxs: dtype"),
        ("actions", np.zeros((5, 3), np.float32), ValueError, "actions"),
        ("actions", np.zeros((0, 2), np.float32), ValueError, "T >= 1"),
        ("rews", np.zeros(4, np.float32), ValueError, "rews"),
        ("dones", np.zeros(5, np.float32), TypeError, "dones: dtype"),
        ("dones", np.zeros((5, 2), bool), ValueError, "dones"),
        ("rews", np.array(["a"] * 5, dtype=object), TypeError, "rews"),
    ],
)
def test_add_trajectory_rejects(buf, field, value, exc, match):
    t = good()
    t[field] = value
    with pytest.raises(exc, match=match):
        buf.add_trajectory(**t)
    assert buf.num_trajectories == 0


def test_add_trajectory_accepts_amago_shapes_casts_and_tensors(buf):
    t = good()
    t["rews"] = t["rews"][:, None].astype(np.float64)  # (T, 1) float64 as AMAGO/gym give
    t["dones"] = t["dones"][:, None]
    t["time_idxs"] = torch.arange(6, dtype=torch.int32)[:, None]
    t["obs"] = torch.ones(6, 2)  # single obs key: a bare array is fine
    tid = buf.add_trajectory(**t)
    assert buf.trajectory(tid)["obs"]["x"].sum() == 12


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"batch_size": 0, "seq_len": 4}, "batch_size"),
        ({"batch_size": 2, "seq_len": 0}, "seq_len"),
        ({"batch_size": 2, "seq_len": 1.5}, "seq_len"),
        ({"batch_size": 2, "seq_len": 4, "padded_sampling": "middle"}, "padded_sampling"),
        ({"batch_size": 2, "seq_len": 4, "weighting": "x"}, "weighting"),
    ],
)
def test_sample_rejects(buf, kwargs, match):
    buf.add_trajectory(**good())
    with pytest.raises(ValueError, match=match):
        buf.sample(**kwargs)


def test_sampling_an_empty_buffer(buf):
    with pytest.raises(ValueError, match="empty"):
        buf.sample(4, 8)


def test_gather_rejects_unknown_ids_and_bad_starts(buf):
    tid = buf.add_trajectory(**good(T=5))
    with pytest.raises(ValueError, match="not stored"):
        buf.gather([tid + 5], [0], 4)
    with pytest.raises(ValueError, match="outside the trajectory"):
        buf.gather([tid], [5], 4)
    with pytest.raises(ValueError, match="outside the trajectory"):
        buf.gather([tid], [-4], 4)
    assert buf.gather([tid], [-3], 4).mask.sum() == 2


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"capacity": 0}, "capacity"),
        ({"capacity": 10, "protected_capacity": -1}, "protected_capacity"),
        ({"capacity": 10, "storage": "disk"}, "storage"),
        ({"capacity": 10, "storage": "mmap"}, "path"),
        ({"capacity": 10, "seed": -1}, "seed"),
        ({"capacity": 10, "seed": 2**64}, "seed"),
        ({"capacity": 10, "num_threads": 0}, "num_threads"),
        ({"capacity": 10, "relabeler": object()}, "relabel"),
    ],
)
def test_constructor_rejects(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ReplayBuffer(OBS, 2, **kwargs)


@pytest.mark.parametrize(
    "fields,A,match",
    [
        ({}, 2, "fields"),
        ({"x": (2, np.float32)}, 2, "fields"),
        ({"a/b": ((2,), np.float32)}, 2, "key"),
        ({"x": ((2,), object)}, 2, "dtype"),
        ({"x": ((0,), np.float32)}, 2, "non-positive"),
        ({"x": ((2,), np.float32)}, 0, "action_dim"),
    ],
)
def test_field_spec_rejects(fields, A, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ReplayBuffer(fields, A, capacity=10)


def test_from_spaces():
    S = gym.spaces
    obs = S.Dict({"img": S.Box(0, 255, (4, 4, 3), np.uint8), "pos": S.Discrete(5), "bits": S.MultiBinary(3)})
    b = ReplayBuffer.from_spaces(obs, S.Discrete(6), capacity=10)
    assert b.action_dim == 6 and b.obs_fields["img"] == ((4, 4, 3), np.uint8)
    assert b.obs_fields["pos"][0] == () and b.obs_fields["bits"][0] == (3,)
    b = ReplayBuffer.from_spaces(S.Box(-1, 1, (3,)), S.Box(-1, 1, (2, 2)), capacity=10)
    assert b.obs_keys == ["observation"] and b.action_dim == 4
    assert ReplayBuffer.from_spaces(S.Box(-1, 1, (3,)), S.MultiBinary(5), capacity=10).action_dim == 5
    with pytest.raises(TypeError, match="action_space"):
        ReplayBuffer.from_spaces(S.Box(-1, 1, (3,)), S.MultiDiscrete([2, 3]), capacity=10)
    with pytest.raises(TypeError, match="observation_space"):
        ReplayBuffer.from_spaces(S.Dict({"t": S.Text(5)}), S.Discrete(2), capacity=10)


def test_discrete_action_indices_are_one_hot_encoded(tmp_path):
    S = gym.spaces
    b = ReplayBuffer.from_spaces(S.Box(-1, 1, (2,)), S.Discrete(4), capacity=50)
    t = good(T=3, A=4)
    t["obs"] = t["obs"]["x"]  # a single-key buffer takes a bare array
    t["actions"] = np.array([0, 3, 1])
    tid = b.add_trajectory(**t)
    np.testing.assert_array_equal(b.trajectory(tid)["actions"], np.eye(4, dtype=np.float32)[[0, 3, 1]])
    t["actions"] = np.array([0, 4, 1])
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        b.add_trajectory(**t)
    w = b.stream(2)
    w.begin({"observation": np.zeros((2, 2), np.float32)}, np.zeros((2, 5), np.float32), np.zeros(2, int))
    w.step(
        np.array([2, 1]),
        np.zeros(2),
        np.ones(2, bool),
        np.zeros((2, 2), np.float32),
        np.zeros((2, 5), np.float32),
        np.ones(2, int),
    )
    assert b.trajectory(tid + 1)["actions"].tolist() == [[0, 0, 1, 0]]
    b.save(tmp_path / "s")
    assert ReplayBuffer.load(tmp_path / "s").discrete_actions
    with pytest.raises(ValueError, match="actions"):  # a Box buffer does not guess
        ReplayBuffer(OBS, 2, capacity=10).add_trajectory(**{**good(), "actions": np.zeros(5, int)})


def test_review_fixes_relabeler_keys_float_indices_negative_time(tmp_path):
    import gymnasium as gym

    from amago_fast import ReplayBuffer
    from amago_fast.relabel import MultiGoalRelabeler

    with pytest.raises(ValueError, match="relabeler.goal_key"):
        ReplayBuffer.from_spaces(
            gym.spaces.Box(-1, 1, (4,)),
            gym.spaces.Discrete(3),
            capacity=100,
            relabeler=MultiGoalRelabeler(num_goals=2, strategy="some"),
        )
    buf = ReplayBuffer.from_spaces(gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(3), capacity=100)
    T = 5
    args = (np.zeros((T + 1, 2), np.float32), np.zeros((T + 1, 4), np.float32), np.arange(T + 1))
    with pytest.raises(TypeError, match="actions: Discrete action indices must be integers"):
        buf.add_trajectory(*args, np.array([0.2, 1.7, 2.0, 0.0, 1.0]), np.zeros(T), np.zeros(T, bool))
    with pytest.raises(ValueError, match="time indices must be >= 0"):
        buf.add_trajectory(args[0], args[1], -np.arange(T + 1), np.arange(T) % 3, np.zeros(T), np.zeros(T, bool))
    assert buf.add_trajectory(*args, np.arange(T) % 3, np.zeros(T), np.zeros(T, bool)) >= 0

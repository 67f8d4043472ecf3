"""Writers of the foreign formats, so the tests can build AMAGO and Minari datasets."""

import json
import types

import numpy as np
import pytest


def write_amago(directory, trajs):
    """AMAGO's .npz trajectory files (_OBS_KEY_<k>, rl2s, time_idxs (T+1, 1), rews, dones (T, 1), actions)."""
    fifo = directory / "fifo"
    fifo.mkdir(parents=True)
    (directory / "protected").mkdir()
    for i, t in enumerate(trajs):
        T = len(t["actions"])
        np.savez(
            fifo / f"TMaze_{i:08x}_{1795538000 + i}.npz",
            **{f"_OBS_KEY_{k}": v for k, v in t["obs"].items()},
            rl2s=np.asarray(t["rl2s"], np.float32),
            time_idxs=np.asarray(t["time_idxs"]).reshape(T + 1, 1),
            rews=np.asarray(t["rews"], np.float32).reshape(T, 1),
            dones=np.asarray(t["dones"], bool).reshape(T, 1),
            actions=np.asarray(t["actions"], np.float32),
        )
    return directory


def write_minari(directory, trajs, raw: bool = False):
    """A Minari dataset directory: data/main_data.hdf5 with episode_<i> groups of raw env
    values (Discrete actions as indices unless raw actions are given)."""
    h5py = pytest.importorskip("h5py", reason="Minari datasets are HDF5 files")
    (directory / "data").mkdir(parents=True)
    with h5py.File(directory / "data" / "main_data.hdf5", "w") as f:
        for i, t in enumerate(trajs):
            g = f.create_group(f"episode_{i}")
            g["observations"] = t["obs"]["observation"]
            g["actions"] = t["raw_actions"] if raw else np.asarray(t["actions"]).argmax(-1)
            g["rewards"] = np.asarray(t["rews"], np.float64).reshape(-1)
            g["terminations"] = np.asarray(t["dones"], bool).reshape(-1)
            g["truncations"] = np.zeros(len(g["rewards"]), bool)
    (directory / "data" / "metadata.json").write_text(json.dumps({"total_episodes": len(trajs)}))
    return directory


@pytest.fixture
def amago_minari():
    return types.SimpleNamespace(write_amago=write_amago, write_minari=write_minari)

"""Offline and offline-to-online RL: datasets in, trajectories out, updates without an env.

- ``iter_offline_trajectories`` / ``load_offline_buffer``: read an amago_fast replay
  snapshot (``ReplayBuffer.save``), an AMAGO buffer directory (its ``.npz`` files) or a
  Minari dataset directory (``data/main_data.hdf5``, read locally with h5py; nothing is
  downloaded) as trajectories in amago_fast's data contract (docs/data.md);
- ``record_dataset``: roll a scripted policy in any registered env into a snapshot;
- ``train_offline``: gradient steps on a buffer, no environment.
"""

from .datasets import detect_format, iter_offline_trajectories, load_offline_buffer
from .record import record_dataset
from .train import train_offline

__all__ = ["detect_format", "iter_offline_trajectories", "load_offline_buffer", "record_dataset", "train_offline"]

"""The replay buffer of an offline run: the dataset in the protected partition (never evicted)."""

from __future__ import annotations

from typing import Any


def offline_replay_buffer(offline_data: str, observation_space, action_space, **buffer_kwargs: Any):
    """A ReplayBuffer whose protected partition holds exactly the trajectories of
    `offline_data` (see TrainerConfig.offline_data); ValueError if it holds none."""
    from amago_fast.offline import iter_offline_trajectories
    from amago_fast.replay import ReplayBuffer

    trajs = list(iter_offline_trajectories(offline_data, observation_space, action_space))
    if not trajs:
        raise ValueError(f"offline_data={offline_data!r} holds no trajectories")
    buf = ReplayBuffer.from_spaces(
        observation_space, action_space, protected_capacity=sum(len(t["actions"]) + 1 for t in trajs), **buffer_kwargs
    )
    for t in trajs:
        buf.add_trajectory(t["obs"], t["rl2s"], t["time_idxs"], t["actions"], t["rews"], t["dones"], protected=True)
    return buf

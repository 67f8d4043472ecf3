"""Random right-padded training windows shared by the parity tests against the real AMAGO."""

from __future__ import annotations

import torch

AMAGO_PAD = 4.0  # AMAGO's pad value for every padded field


def padded_transitions(g: torch.Generator, kind: str, A: int, L: int, lengths: tuple[int, ...]):
    """Actions, rewards, dones and the timestep mask of len(lengths) windows of L transitions,
    window i holding lengths[i] real ones; the rest is AMAGO's pad value. Window 0 has an
    episode end at step 4. Draws actions then rewards from g."""
    B = len(lengths)
    if kind == "discrete":
        actions = torch.nn.functional.one_hot(torch.randint(0, A, (B, L), generator=g), A).float()
    else:
        actions = torch.rand(B, L, A, generator=g) * 2 - 1
    rews = torch.randn(B, L, 1, generator=g)
    dones = torch.zeros(B, L, 1)
    dones[0, 4] = 1.0
    mask = torch.zeros(B, L + 1, dtype=torch.bool)
    for i, n in enumerate(lengths):
        mask[i, : n + 1] = True
        for x in (actions, rews, dones):
            x[i, n:] = AMAGO_PAD
    return actions, rews, dones, mask

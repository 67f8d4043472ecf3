"""Copy amago_fast's actor, critics and PopArt into an AMAGO `Agent` (and back).

The heads of the two packages have the same shapes (see docs/agent.md, "Weight mapping"),
so a trained amago_fast policy head can be evaluated inside AMAGO, and an AMAGO head
loaded into amago_fast. Only the default AMAGO heads are supported: `amago.nets.
actor_critic.Actor` (an `MLP` with `in_layer`, `layers`, `out_layer`) and `NCritics`
(an EinMix ensemble with `inp_layer`, `core_layers`, `output_layer`). The sequence
encoders differ between the packages and are not mapped.

    amago_fast                           AMAGO
    actor.net[2i] (Linear)               actor.base.{in_layer, layers[i-1], out_layer}
    critics.hidden[i] (C, in, out)       critics.net.{inp_layer, core_layers[i-1]}
    critics.out                          critics.net.output_layer
    target["actor"], target["critics"]   target_actor, target_critics
    maximized, else critics (again)      maximized_critics (AMAGO's DPG copy; weights only,
                                         its carried gradients are not moved)
    popart.{mu, nu, w, b, t} (G,)        popart.{mu, nu, w, b, _t} (G, 1)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn


def _actor_layers(amago_actor: Any) -> list[nn.Linear]:
    base = amago_actor.base
    return [base.in_layer, *base.layers, base.out_layer]


def _critic_layers(amago_critics: Any) -> list[nn.Module]:
    net = amago_critics.net
    return [net.inp_layer, *net.core_layers, net.output_layer]


def _pairs(agent: Any, amago_agent: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(amago_fast tensor, AMAGO tensor) pairs; each pair holds the same numbers in its own layout."""
    pairs = []
    actors = [(agent.actor, amago_agent.actor), (agent.target["actor"], amago_agent.target_actor)]
    for ours, theirs in actors:
        lin = [m for m in ours.net if isinstance(m, nn.Linear)]
        ref = _actor_layers(theirs)
        if len(lin) != len(ref):
            raise ValueError(f"actor depth differs: amago_fast has {len(lin)} linear layers, AMAGO {len(ref)}")
        for a, b in zip(lin, ref):
            pairs += [(a.weight, b.weight), (a.bias, b.bias)]
    critics = [
        (agent.critics, amago_agent.critics),
        (agent.target["critics"], amago_agent.target_critics),
        # dpg_critics="amago" keeps its own copy; otherwise AMAGO's equals the critics
        (getattr(agent, "maximized", agent.critics), amago_agent.maximized_critics),
    ]
    for ours, theirs in critics:
        lin = [*ours.hidden, ours.out]
        ref = _critic_layers(theirs)
        if len(lin) != len(ref):
            raise ValueError(f"critic depth differs: amago_fast has {len(lin)} layers, AMAGO {len(ref)}")
        for a, b in zip(lin, ref):
            pairs += [(a.weight, b.weight), (a.bias, b.bias)]
    return pairs


def _popart_pairs(agent: Any, amago_agent: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    p, q = agent.popart, amago_agent.popart
    return [(p.mu, q.mu), (p.nu, q.nu), (p.w, q.w), (p.b, q.b), (p.t, q._t)]


@torch.no_grad()
def copy_heads_to_amago(agent: Any, amago_agent: Any) -> None:
    """Write `agent`'s (amago_fast) actor, critics, their targets and PopArt into `amago_agent`."""
    for ours, theirs in _pairs(agent, amago_agent) + _popart_pairs(agent, amago_agent):
        if ours.numel() != theirs.numel():
            raise ValueError(f"shape mismatch: amago_fast {tuple(ours.shape)} vs AMAGO {tuple(theirs.shape)}")
        theirs.copy_(ours.reshape(theirs.shape))


@torch.no_grad()
def copy_heads_from_amago(amago_agent: Any, agent: Any) -> None:
    """Write `amago_agent`'s actor, critics, targets and PopArt into `agent` (amago_fast)."""
    pairs = _pairs(agent, amago_agent)
    seen = set()
    for ours, theirs in pairs + _popart_pairs(agent, amago_agent):
        if id(ours) in seen:  # without a maximized copy agent.critics is paired twice
            continue
        seen.add(id(ours))
        if ours.numel() != theirs.numel():
            raise ValueError(f"shape mismatch: amago_fast {tuple(ours.shape)} vs AMAGO {tuple(theirs.shape)}")
        ours.copy_(theirs.reshape(ours.shape))


def amago_grads(agent: Any, amago_agent: Any) -> list[tuple[str, torch.Tensor | None, torch.Tensor | None]]:
    """(name, amago_fast grad, AMAGO grad in amago_fast's layout) for the online actor and
    critic parameters, for parity tests."""
    out = []
    pairs = _pairs(agent, amago_agent)
    n_actor = 2 * len([m for m in agent.actor.net if isinstance(m, nn.Linear)])
    n_critic = 2 * (len(agent.critics.hidden) + 1)
    online = pairs[:n_actor] + pairs[2 * n_actor : 2 * n_actor + n_critic]
    for i, (ours, theirs) in enumerate(online):
        g_theirs = None if theirs.grad is None else theirs.grad.reshape(ours.shape)
        out.append((f"actor[{i}]" if i < n_actor else f"critics[{i - n_actor}]", ours.grad, g_theirs))
    return out

"""Copy amago_fast's actor, critics and PopArt into an AMAGO `Agent` (and back).

The heads of the two packages have the same shapes (see docs/agent.md, "Weight mapping"),
so a trained amago_fast policy head can be evaluated inside AMAGO, and an AMAGO head
loaded into amago_fast. Only the default AMAGO heads are supported: `amago.nets.
actor_critic.Actor` (an `MLP` with `in_layer`, `layers`, `out_layer`) and `NCritics`
(an EinMix ensemble with `inp_layer`, `core_layers`, `output_layer`). The trajectory
encoder has its own mapping (`amago_traj_weights.copy_traj_encoder_to_amago`).

The first layer of every head reads the state embedding, and with "fixed" positions
AMAGO's Transformer holds amago_fast's state channels in another order (AMAGO channel j =
amago_fast channel perm[j], the perm `copy_traj_encoder_to_amago` returns). So the input
columns of those first layers that read the state are permuted with it: by default the
perm of `agent`'s own trajectory encoder (identity for "learned", "rotary" and the GRU),
so heads copied next to `copy_traj_encoder_to_amago` make the same agent; pass
``state_perm`` to override.

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


def state_perm_of(agent: Any) -> torch.Tensor | None:
    """AMAGO's state channel order for `agent`'s trajectory encoder (None: the same order)."""
    traj = getattr(agent, "traj", None)
    pos = getattr(traj, "pos", None)
    if pos is None or getattr(pos, "kind", None) != "fixed":
        return None
    from .amago_traj_weights import residual_perm

    return residual_perm(traj.d_model, "fixed")


def _state_readers(agent: Any) -> set[int]:
    """ids of the weights whose input axis (dim 1) starts with the state embedding."""
    firsts = [next(m for m in agent.actor.net if isinstance(m, nn.Linear)).weight]
    firsts.append(next(m for m in agent.target["actor"].net if isinstance(m, nn.Linear)).weight)
    for crit in (agent.critics, agent.target["critics"], getattr(agent, "maximized", agent.critics)):
        firsts.append(crit.hidden[0].weight)
    return {id(w) for w in firsts}


def _in_cols(w: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Input-axis index: AMAGO's column j of w is amago_fast's column cols[j]."""
    rest = torch.arange(len(perm), w.shape[1])
    return torch.cat([perm.to(torch.long), rest]).to(w.device)


def _perm_arg(agent: Any, state_perm: Any) -> torch.Tensor | None:
    if isinstance(state_perm, str):
        if state_perm != "auto":
            raise ValueError(f"state_perm must be 'auto', None or a permutation, got {state_perm!r}")
        return state_perm_of(agent)
    if state_perm is None:
        return None
    perm = torch.as_tensor(state_perm, dtype=torch.long)
    d = next(m for m in agent.actor.net if isinstance(m, nn.Linear)).in_features
    if perm.shape != (d,) or not torch.equal(perm.sort().values, torch.arange(d)):
        raise ValueError(f"state_perm must be a permutation of range({d}), got shape {tuple(perm.shape)}")
    return perm


def head_tensors(agent: Any, amago_agent: Any, state_perm: Any = "auto") -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(amago_fast tensor, AMAGO's tensor in amago_fast's layout) for every actor and critic
    tensor (online, target, DPG copy), for comparisons (copies, not views)."""
    perm = _perm_arg(agent, state_perm)
    readers = _state_readers(agent)
    out = []
    for ours, theirs in _pairs(agent, amago_agent):
        t = theirs.detach().reshape(ours.shape)
        if perm is not None and id(ours) in readers:
            t = torch.empty_like(t).index_copy_(1, _in_cols(ours, perm), t)
        out.append((ours, t))
    return out


def _popart_pairs(agent: Any, amago_agent: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    p, q = agent.popart, amago_agent.popart
    return [(p.mu, q.mu), (p.nu, q.nu), (p.w, q.w), (p.b, q.b), (p.t, q._t)]


@torch.no_grad()
def copy_heads_to_amago(agent: Any, amago_agent: Any, state_perm: Any = "auto") -> None:
    """Write `agent`'s (amago_fast) actor, critics, their targets and PopArt into `amago_agent`.

    state_perm: AMAGO's state channel order ("auto": that of `agent`'s trajectory encoder,
    as `copy_traj_encoder_to_amago` lays it out; None: the same order; or a permutation)."""
    perm = _perm_arg(agent, state_perm)
    readers = _state_readers(agent)
    for ours, theirs in _pairs(agent, amago_agent) + _popart_pairs(agent, amago_agent):
        if ours.numel() != theirs.numel():
            raise ValueError(f"shape mismatch: amago_fast {tuple(ours.shape)} vs AMAGO {tuple(theirs.shape)}")
        src = ours.index_select(1, _in_cols(ours, perm)) if perm is not None and id(ours) in readers else ours
        theirs.copy_(src.reshape(theirs.shape))


@torch.no_grad()
def copy_heads_from_amago(amago_agent: Any, agent: Any, state_perm: Any = "auto") -> None:
    """Write `amago_agent`'s actor, critics, targets and PopArt into `agent` (amago_fast).
    state_perm as in `copy_heads_to_amago`."""
    perm = _perm_arg(agent, state_perm)
    readers = _state_readers(agent)
    pairs = _pairs(agent, amago_agent)
    seen = set()
    for ours, theirs in pairs + _popart_pairs(agent, amago_agent):
        if id(ours) in seen:  # without a maximized copy agent.critics is paired twice
            continue
        seen.add(id(ours))
        if ours.numel() != theirs.numel():
            raise ValueError(f"shape mismatch: amago_fast {tuple(ours.shape)} vs AMAGO {tuple(theirs.shape)}")
        val = theirs.reshape(ours.shape)
        if perm is not None and id(ours) in readers:
            ours.index_copy_(1, _in_cols(ours, perm), val)
        else:
            ours.copy_(val)


def amago_grads(
    agent: Any, amago_agent: Any, state_perm: Any = "auto"
) -> list[tuple[str, torch.Tensor | None, torch.Tensor | None]]:
    """(name, amago_fast grad, AMAGO grad in amago_fast's layout) for the online actor and
    critic parameters, for parity tests. state_perm as in `copy_heads_to_amago`."""
    perm = _perm_arg(agent, state_perm)
    readers = _state_readers(agent)
    out = []
    pairs = _pairs(agent, amago_agent)
    n_actor = 2 * len([m for m in agent.actor.net if isinstance(m, nn.Linear)])
    n_critic = 2 * (len(agent.critics.hidden) + 1)
    online = pairs[:n_actor] + pairs[2 * n_actor : 2 * n_actor + n_critic]
    for i, (ours, theirs) in enumerate(online):
        g_theirs = None if theirs.grad is None else theirs.grad.reshape(ours.shape)
        if g_theirs is not None and perm is not None and id(ours) in readers:
            g_theirs = torch.empty_like(g_theirs).index_copy_(1, _in_cols(ours, perm), g_theirs)
        out.append((f"actor[{i}]" if i < n_actor else f"critics[{i - n_actor}]", ours.grad, g_theirs))
    return out

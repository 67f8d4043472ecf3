"""The AMAGO learning update as loss functions over a padded batch of windows.

One trajectory-encoder forward per update: the TD targets bootstrap from the online
encoder's (no-grad) states through the target actor and critics, as AMAGO does.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.func import functional_call

from ..nets.heads import buffer_action_for_critic

if TYPE_CHECKING:
    from .model import Agent, TorchBatch


def masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of x (B, L, ...) over positions where valid (B, L) is True (and all trailing dims)."""
    v = valid.to(x.dtype).view(*valid.shape, *([1] * (x.dim() - valid.dim())))
    per = x[0, 0].numel()
    return (x * v).sum() / (v.sum() * per).clamp_min(1.0)


def _shift(x: torch.Tensor, k: int) -> torch.Tensor:
    """x[:, t + k] at position t, zero past the end. x: (B, L, ...)."""
    if k == 0:
        return x
    return torch.cat([x[:, k:], torch.zeros_like(x[:, :k])], dim=1)


def nstep_targets(
    rews: torch.Tensor, dones: torch.Tensor, valid: torch.Tensor, v_next: torch.Tensor,
    gammas: torch.Tensor, n: int,
) -> torch.Tensor:
    """n-step TD targets for every gamma.

    rews, dones, valid: (B, L); v_next: (B, L, G) = V(s_{t+1}); gammas: (G,) -> (B, L, G).

        y_t = sum_{k<m} gamma^k r_{t+k} + gamma^m (1 - d_{t+m-1}) V(s_{t+m})
        m = min(n, steps until the episode terminates or the window's data ends)
    """
    ret = torch.zeros_like(v_next)
    disc = torch.ones_like(v_next)
    boot = torch.zeros_like(v_next)
    alive = torch.ones_like(valid)
    for k in range(n):
        use = (alive & _shift(valid, k))[..., None]  # (B, L, 1)
        r_k = _shift(rews, k)[..., None]
        d_k = _shift(dones, k)[..., None].to(v_next.dtype)
        ret = ret + use * disc * r_k
        disc_next = disc * gammas
        boot = torch.where(use, disc_next * (1.0 - d_k) * _shift(v_next, k), boot)
        disc = torch.where(use, disc_next, disc)
        alive = use[..., 0] & ~_shift(dones, k)
    return ret + boot


def redq_reduce(q: torch.Tensor, k: int, use_min: bool) -> torch.Tensor:
    """REDQ over the critic axis of q (B, L, C, G): for every (b, t, gamma) draw k critic
    indices (with replacement, as AMAGO) and take their min (or mean). -> (B, L, G)"""
    B, L, C, G = q.shape
    idx = torch.randint(0, C, (B, L, k, G, 1), device=q.device)[..., 0]  # AMAGO's draw shape
    sub = torch.take_along_dim(q, idx, dim=2)
    return sub.min(2).values if use_min else sub.mean(2)


def _policy_actions(agent: "Agent", dist, k: int) -> torch.Tensor:
    """Actions a ~ pi for V(s) and DPG: the exact probabilities for discrete actions (k = 1),
    else k reparameterised samples. -> (k, ..., G, A)"""
    if agent.discrete:
        return dist.probs.unsqueeze(0)
    return torch.stack([dist.sample(reparam=True) for _ in range(k)])


@torch.no_grad()
def td_targets(agent: "Agent", s: torch.Tensor, b: "TorchBatch") -> torch.Tensor:
    """Unnormalised multi-gamma targets. s: online encoder states (B, L+1, D). -> (B, L, G)

        a'  ~ pi_target(s_{t+1})                    (discrete: its probabilities)
        Q'  = popart.denorm_out(Q_target(s_{t+1}, a'))           (B, L, C, G)
        V'  = min (or mean, without DPG) over a random REDQ draw of critics
        y   = nstep(r * reward_multiplier, d, V')
    """
    cfg, tgt = agent.config, agent.target
    s = s.detach()
    a_next = _policy_actions(agent, tgt["actor"](s), 1)[0]  # (B, L+1, G, A)
    q = agent.popart.denorm_out(tgt["critics"](s[:, 1:], a_next[:, 1:]).float())  # (B, L, C, G)
    v_next = redq_reduce(q, cfg.redq_subset, use_min=cfg.online_coeff > 0)
    gammas = torch.tensor(cfg.all_gammas, device=v_next.device, dtype=v_next.dtype)
    valid = b.mask[:, 1:]
    return nstep_targets(b.rews * cfg.reward_multiplier, b.dones, valid, v_next, gammas, cfg.n_step)


def _critic_values(agent: "Agent", s: torch.Tensor, a_buf: torch.Tensor, a_pi: torch.Tensor):
    """Q(s_t, a_t) with gradients to the critics and s, and Q_frozen(sg(s), a_pi) with
    gradients to a_pi only. -> (q, q_pi), both (B, L, C, G).

    A discrete critic's Q table does not depend on the action, so both come from one
    table forward: q_pi weighs the detached table (the same values and gradients as
    frozen weights on sg(s), one critic forward fewer per update)."""
    if agent.critics.discrete:
        table = agent.critics.q_table(s)  # (B, L+1, C, G, A)
        q = (table[:, :-1] * a_buf[:, :, None, None, :]).sum(-1)
        q_pi = (table.detach() * a_pi.unsqueeze(-3)).sum(-1).mean(0)[:, :-1]
        return q, q_pi
    frozen = {n: p.detach() for n, p in agent.critics.named_parameters()}
    frozen.update(agent.critics.named_buffers())
    s_k = s.detach().unsqueeze(0).expand(a_pi.shape[0], *s.shape)
    q_pi = functional_call(agent.critics, frozen, (s_k, a_pi)).mean(0)[:, :-1]
    q = agent.critics(s[:, :-1], a_buf[:, :, None, :])
    return q, q_pi


def amago_loss(agent: "Agent", b: "TorchBatch") -> tuple[torch.Tensor, dict[str, float]]:
    """Total AMAGO loss on one batch of windows: s = traj(tstep(obs, rl2s), time_idxs),
    then `loss_from_states`."""
    with agent.autocast():
        s = agent.states(b.obs, b.rl2s, b.time_idxs)  # (B, L+1, D)
    if agent.multitask:
        from .multitask import multitask_loss_from_states

        return multitask_loss_from_states(agent, s.float(), b)
    return loss_from_states(agent, s.float(), b)


def loss_from_states(agent: "Agent", s: torch.Tensor, b: "TorchBatch") -> tuple[torch.Tensor, dict[str, float]]:
    """The AMAGO update from state embeddings s (B, L+1, D); all gammas, all critics.

        pi     = actor(s);  a_pi ~ pi (discrete: probs)          (k, B, L+1, G, A)
        Qpi    = mean_k Q_frozen(sg(s), a_pi)   critic weights frozen   (B, L+1, C, G)
        Q      = Q(s_t, a_t)                                         (B, L, C, G)
        y      = td_targets(...); popart.update(y[valid])
        critic = mean_valid,C,G (popart.norm_out(Q) - popart.normalize(y))^2
        dpg    = -popart.norm_out(min_C Qpi)
        A      = mean_C Q - mean_C Qpi        (raw critic scale: PopArt's map keeps the sign)
        bc     = -1[A > 0] log pi(a_t | s_t)
        actor  = mean_valid,G (online_coeff * dpg + offline_coeff * bc)
        loss   = actor + critic_loss_weight * critic

    valid = mask[:, 1:] (transition t is real data). Random draws come in AMAGO's order
    (policy samples, target-policy samples, REDQ indices), so a seeded generator gives
    both packages the same draws. Returns (loss, metrics).
    """
    cfg = agent.config
    valid = b.mask[:, 1:]  # (B, L)
    a_buf = buffer_action_for_critic(agent.kind, b.actions)  # (B, L, A)
    dist = agent.actor(s)  # (B, L+1, G, A)
    a_pi = _policy_actions(agent, dist, cfg.value_samples)  # (k, B, L+1, G, A)
    q, q_pi = _critic_values(agent, s, a_buf, a_pi)

    y = td_targets(agent, s, b)  # (B, L, G)
    agent.popart.update(y[valid])
    y_norm = agent.popart.normalize(y)
    critic_loss = masked_mean((agent.popart.norm_out(q) - y_norm[:, :, None, :]).pow(2), valid)

    dpg = -agent.popart.norm_out(q_pi.min(2).values)  # (B, L, G)
    with torch.no_grad():
        adv = q.mean(2) - q_pi.mean(2)
        filt = (adv > 0).float()
    a_logp = b.actions.clamp(0.0, 1.0) if agent.discrete else b.actions.clamp(-1.0, 1.0)
    logp = dist.log_prob(torch.cat([a_logp, a_logp[:, -1:]], 1)[:, :, None, :])[:, :-1]  # (B, L, G)
    actor_loss = masked_mean(cfg.online_coeff * dpg - cfg.offline_coeff * filt * logp, valid)
    loss = actor_loss + cfg.critic_loss_weight * critic_loss
    metrics = update_metrics(agent, loss, critic_loss, actor_loss, agent.popart.denorm_out(q.mean(2)), y, filt,
                             logp, valid)
    return loss, metrics


@torch.no_grad()
def update_metrics(agent: "Agent", loss, critic_loss, actor_loss, q_value, y, filt, logp, valid) -> dict[str, float]:
    """The logged scalars of one update (both agent types). q_value: (B, L, G) in reward units."""
    return {
        "train/loss": loss.item(),
        "train/critic_loss": critic_loss.item(),
        "train/actor_loss": actor_loss.item(),
        "train/q_policy_gamma": masked_mean(q_value[..., -1], valid).item(),
        "train/target_policy_gamma": masked_mean(y[..., -1], valid).item(),
        "train/filter_rate": masked_mean(filt, valid).item(),
        "train/logp_policy_gamma": masked_mean(logp[..., -1], valid).item(),
        "train/popart_sigma": agent.popart.sigma[-1].item(),
        "train/valid_frac": valid.float().mean().item(),
    }

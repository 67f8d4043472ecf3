"""AMAGO-2's multi-task update (`amago.agent.MultiTaskAgent`; Grigsby et al., NeurIPS 2024).

One policy over tasks whose returns differ by orders of magnitude, without task ids: the
critics classify TD targets into fixed value bins (a cross-entropy whose gradient is
bounded whatever the reward scale), every action kind is a critic input, and the actor
learns by filtered behaviour cloning, 1[A > 0] log pi, which reads only the sign of the
advantage (the DPG term, which scales with Q, is off by default).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.func import functional_call

from ..nets.heads import buffer_action_for_critic
from .losses import masked_mean, nstep_targets, redq_reduce, update_metrics

if TYPE_CHECKING:
    from .model import Agent, TorchBatch


def _critic_values(agent: "Agent", critics, s: torch.Tensor, a: torch.Tensor, params=None) -> torch.Tensor:
    """Scalar values (k, ..., C, G) of k action samples a (k, ..., G, A) at states s (..., D);
    params: evaluate `critics` with these (detached) weights instead of its own."""
    s_k = s.unsqueeze(0).expand(a.shape[0], *s.shape)
    logits = critics(s_k, a) if params is None else functional_call(critics, params, (s_k, a))
    return agent.values.value(logits.float())


def multitask_loss_from_states(agent: "Agent", s: torch.Tensor, b: "TorchBatch") -> tuple[torch.Tensor, dict[str, float]]:
    """The multi-task update from state embeddings s (B, L+1, D).

        a'     ~ pi_target(s_{t+1});  Q' = E_bins Q_target(s_{t+1}, a')       (B, L, C, G)
        y      = n-step(r * reward_multiplier, d, REDQ(Q'))   (mean unless DPG is on)
        critic = mean_valid,C,G CE(logits Q(s_t, a_t), twohot(y))
        A      = mean_C E_bins Q(s_t, a_t) - mean_{k,C} E_bins Q(s_t, a_k),  a_k ~ pi (k samples)
        actor  = mean_valid,G(offline_coeff * -1[A > 0] log pi(a_t|s_t)
                              + online_coeff * -popart.normalize(min_C mean_k Q(sg(s_t), a~pi)))

    PopArt statistics still follow the targets (for logging and the DPG term). Random
    draws come in AMAGO's order (target samples, REDQ indices, policy samples, DPG samples).
    """
    cfg, tgt = agent.config, agent.target
    valid = b.mask[:, 1:]  # (B, L)
    a_buf = buffer_action_for_critic(agent.kind, b.actions)  # (B, L, A)
    dist = agent.actor(s)  # (B, L+1, G, A)

    with torch.no_grad():
        sd = s.detach()
        a_next = tgt["actor"](sd).sample_n(1)  # (1, B, L+1, G, A)
        q_next = _critic_values(agent, tgt["critics"], sd[:, 1:], a_next[:, :, 1:]).mean(0)  # (B, L, C, G)
        v_next = redq_reduce(q_next, cfg.redq_subset, use_min=cfg.online_coeff > 0)
        gammas = torch.tensor(cfg.all_gammas, device=v_next.device, dtype=v_next.dtype)
        y = nstep_targets(b.rews * cfg.reward_multiplier, b.dones, valid, v_next, gammas, cfg.n_step)
        agent.popart.update(y[valid])
        labels = agent.values.labels(y)  # (B, L, G, bins)

    logits = agent.critics(s[:, :-1], a_buf[:, :, None, :]).float()  # (B, L, C, G, bins)
    ce = -(labels[:, :, None] * logits.log_softmax(-1)).sum(-1)  # (B, L, C, G)
    critic_loss = masked_mean(ce, valid)
    q = agent.values.value(logits.detach())  # (B, L, C, G)

    actor_terms = torch.zeros_like(q[:, :, 0])  # (B, L, G)
    filt = torch.zeros_like(actor_terms)
    logp = torch.zeros_like(actor_terms)
    if cfg.offline_coeff > 0:
        with torch.no_grad():
            a_k = dist.sample_n(cfg.value_samples)  # (k, B, L+1, G, A)
            v = _critic_values(agent, agent.critics, sd, a_k)[:, :, :-1]  # (k, B, L, C, G)
            adv = q.mean(2) - v.mean((0, 3))
            filt = (adv > 0).float()
        a_logp = b.actions.clamp(0.0, 1.0) if agent.discrete else b.actions.clamp(-1.0, 1.0)
        logp = dist.log_prob(torch.cat([a_logp, a_logp[:, -1:]], 1)[:, :, None, :])[:, :-1]
        actor_terms = actor_terms - cfg.offline_coeff * filt * logp
    if cfg.online_coeff > 0:
        a_pi = torch.stack([dist.sample(reparam=True) for _ in range(cfg.value_samples)])
        frozen = {n: p.detach() for n, p in agent.critics.named_parameters()}
        q_pi = _critic_values(agent, agent.critics, s.detach(), a_pi, frozen).mean(0).min(2).values  # (B, L+1, G)
        actor_terms = actor_terms - cfg.online_coeff * agent.popart.normalize(q_pi)[:, :-1]
    actor_loss = masked_mean(actor_terms, valid)
    loss = actor_loss + cfg.critic_loss_weight * critic_loss
    metrics = update_metrics(agent, loss, critic_loss, actor_loss, q.mean(2), y, filt, logp, valid)
    return loss, metrics

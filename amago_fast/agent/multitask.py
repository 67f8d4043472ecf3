"""AMAGO-2's multi-task update (`amago.agent.MultiTaskAgent`; Grigsby et al., NeurIPS 2024).

One policy over tasks whose returns differ by orders of magnitude, without task ids: the
critics classify TD targets into fixed value bins (a cross-entropy whose gradient is
bounded whatever the reward scale), every action kind is a critic input, and the actor
learns by filtered behaviour cloning, 1[A > 0] log pi, which reads only the sign of the
advantage (the DPG term, which scales with Q, is off by default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch

from ..nets.heads import StatsReduce, TwoHotValues, buffer_action_for_critic
from ..replay.batch import Batch
from .losses import AmagoLoss, loss_from_states, masked_mean

if TYPE_CHECKING:
    from ..nets import ActorHead, CriticEnsemble
    from .config import AgentConfig
    from .model import Agent


class MultiTaskLoss(AmagoLoss):
    """AmagoLoss with value-bin critics: MultiTaskLoss(config, kind, actor, critics, values).

    `values` (TwoHotValues) turns the critics' bin logits into values and TD targets into
    two-hot labels. Targets, PopArt, the EMA, log-probabilities and metrics are AmagoLoss's.
    """

    def __init__(
        self,
        config: "AgentConfig",
        kind: str,
        actor: "ActorHead",
        critics: "CriticEnsemble",
        values: TwoHotValues,
        stats_reduce: Optional[StatsReduce] = None,
    ):
        super().__init__(config, kind, actor, critics, stats_reduce)
        self.values = values

    @staticmethod
    def _reads_dpg_critics(config: "AgentConfig") -> bool:
        """AMAGO-2's agent reads its DPG critics for the DPG term only (V(s): the critics)."""
        return config.online_coeff > 0

    def _values(self, critics, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Scalar values (k, ..., C, G) of k action samples a (k, ..., G, A) at states s (..., D)."""
        s_k = s.unsqueeze(0).expand(a.shape[0], *s.shape)
        return self.values.value(critics(s_k, a).float())

    def _target_q(self, s: torch.Tensor) -> torch.Tensor:
        """E_bins Q_target(s_{t+1}, a' ~ pi_target(s_{t+1})). s (B, L+1, D) -> (B, L, C, G)"""
        a_next = self.target["actor"](s).sample_n(1)  # (1, B, L+1, G, A)
        return self._values(self.target["critics"], s[:, 1:], a_next[:, :, 1:]).mean(0)

    def forward(self, s: torch.Tensor, b: Batch) -> tuple[torch.Tensor, dict[str, float]]:
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
        cfg, critics = self.config, self.critics
        valid = b.mask[:, 1:]  # (B, L)
        a_buf = buffer_action_for_critic(self.kind, b.actions)  # (B, L, A)
        dist = self.actor(s)  # (B, L+1, G, A)

        with torch.no_grad():
            sd = s.detach()
            y = self.td_targets(sd, b)  # (B, L, G)
            self.popart.update(y[valid])
            labels = self.values.labels(y)  # (B, L, G, bins)

        logits = critics(s[:, :-1], a_buf[:, :, None, :]).float()  # (B, L, C, G, bins)
        ce = -(labels[:, :, None] * logits.log_softmax(-1)).sum(-1)  # (B, L, C, G)
        critic_loss = masked_mean(ce, valid)
        q = self.values.value(logits.detach())  # (B, L, C, G)

        actor_terms = torch.zeros_like(q[:, :, 0])  # (B, L, G)
        filt = torch.zeros_like(actor_terms)
        logp = torch.zeros_like(actor_terms)
        if cfg.offline_coeff > 0:
            with torch.no_grad():
                a_k = dist.sample_n(cfg.value_samples)  # (k, B, L+1, G, A)
                v = self._values(critics, sd[:, :-1], a_k[:, :, :-1])  # (k, B, L, C, G)
                adv = q.mean(2) - v.mean((0, 3))
                filt = (adv > 0).float()
            logp = self._log_prob(dist, b)
            actor_terms = actor_terms - cfg.offline_coeff * filt * logp
        if cfg.online_coeff > 0:
            a_pi = torch.stack([dist.sample(reparam=True) for _ in range(cfg.value_samples)])
            logits = self._dpg_critic_out(s[:, :-1], a_pi[:, :, :-1])  # (k, B, L, C, G, bins)
            q_pi = self.values.value(logits.float()).mean(0).min(2).values  # (B, L, G)
            actor_terms = actor_terms - cfg.online_coeff * self.popart.normalize(q_pi)
        actor_loss = masked_mean(actor_terms, valid)
        loss = actor_loss + cfg.critic_loss_weight * critic_loss
        metrics = self._metrics(loss, critic_loss, actor_loss, q.mean(2), y, filt, logp, valid)
        return loss, metrics


def multitask_loss_from_states(agent: "Agent", s: torch.Tensor, b: Batch) -> tuple[torch.Tensor, dict[str, float]]:
    """`agent.loss(s, b)` for a multi-task agent (TypeError for any other)."""
    if not isinstance(agent.loss, MultiTaskLoss):
        raise TypeError(f"agent.loss must be a MultiTaskLoss, got {type(agent.loss).__name__}")
    return loss_from_states(agent, s, b)

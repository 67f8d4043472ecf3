"""The AMAGO learning update as a loss object over a padded batch of windows.

`AmagoLoss` owns what only the update needs: the target actor and critics (EMA copies of
the online heads) and PopArt, whose statistics reduction is injected (`set_stats_reduce`:
data-parallel learners pass an all-reduce). One trajectory-encoder forward per update:
the TD targets bootstrap from the online encoder's (no-grad) states through the target
actor and critics, as AMAGO does. `amago_loss(agent, b)` runs the encoders, then the loss.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Optional

import torch
import torch.nn as nn
from torch.func import functional_call

from ..nets.heads import PopArt, StatsReduce, buffer_action_for_critic
from ..replay.batch import Batch

if TYPE_CHECKING:
    from ..nets import ActorHead, CriticEnsemble
    from .config import AgentConfig
    from .model import Agent

TARGET_NETS = ("actor", "critics")


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
    rews: torch.Tensor,
    dones: torch.Tensor,
    valid: torch.Tensor,
    v_next: torch.Tensor,
    gammas: torch.Tensor,
    n: int,
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


class AmagoLoss(nn.Module):
    """AMAGO's update from state embeddings: loss(s, b) -> (loss, metrics).

    AmagoLoss(config, kind, actor, critics, stats_reduce=None): `actor` and `critics` are
    the online heads (shared with the Agent, not copied); the loss creates and owns
    `target` (ModuleDict of frozen "actor" / "critics" copies, moved by `update_targets`)
    and `popart` (one affine layer on the raw outputs of both critics). `stats_reduce`
    maps PopArt's local statistics [sum y, sum y^2, count] to the job-wide ones.
    """

    def __init__(
        self,
        config: "AgentConfig",
        kind: str,
        actor: "ActorHead",
        critics: "CriticEnsemble",
        stats_reduce: Optional[StatsReduce] = None,
    ):
        super().__init__()
        self.config, self.kind, self.discrete = config, kind, kind == "discrete"
        self.actor, self.critics = actor, critics
        self.popart = PopArt(len(config.all_gammas), config.popart_beta, config.popart, stats_reduce=stats_reduce)
        # Target copies of the heads only: TD targets bootstrap from the online encoder (AMAGO).
        self.target = nn.ModuleDict({k: copy.deepcopy(getattr(self, k)) for k in TARGET_NETS})
        self.target.requires_grad_(False)
        # dpg_critics="amago": AMAGO's `maximized_critics`, refreshed from the critics in
        # update_targets (before the optimizer step) and left out of the optimizer, so its
        # gradients (DPG only) are never zeroed; the Agent counts them in its clip norm.
        self.maximized: Optional[nn.Module] = None
        if config.dpg_critics == "amago" and self._reads_dpg_critics(config):
            self.maximized = copy.deepcopy(critics)
            self.maximized.requires_grad_(config.online_coeff > 0)

    @staticmethod
    def _reads_dpg_critics(config: "AgentConfig") -> bool:
        """AMAGO's agent reads its DPG critics for V(s) too, so always."""
        return True

    def set_stats_reduce(self, fn: Optional[StatsReduce]) -> None:
        """PopArt's statistics reduction from now on (None: this process's batch only)."""
        self.popart.stats_reduce = fn

    def train(self, mode: bool = True) -> "AmagoLoss":
        super().train(mode)
        self.target.eval()  # target nets: no dropout, frozen sigma-reparam estimates
        return self

    @torch.no_grad()
    def update_targets(self, tau: float) -> None:
        """target <- (1 - tau) target + tau online (parameters); buffers are copied."""
        for k, tgt in self.target.items():
            src = getattr(self, k)
            torch._foreach_lerp_(list(tgt.parameters()), list(src.parameters()), tau)
            buffers = list(tgt.buffers())
            if buffers:
                torch._foreach_copy_(buffers, list(src.buffers()))
        if self.maximized is not None:  # a full copy, gradients untouched (AMAGO's _full_copy)
            torch._foreach_copy_(list(self.maximized.parameters()), list(self.critics.parameters()))

    # ------------------------------------------------------------ shared pieces
    def _policy_actions(self, dist, k: int) -> torch.Tensor:
        """Actions a ~ pi for V(s) and DPG: the exact probabilities for discrete actions
        (k = 1), else k reparameterised samples. -> (k, ..., G, A)"""
        if self.discrete:
            return dist.probs.unsqueeze(0)
        return torch.stack([dist.sample(reparam=True) for _ in range(k)])

    def _target_q(self, s: torch.Tensor) -> torch.Tensor:
        """Q_target(s_{t+1}, a' ~ pi_target(s_{t+1})) in reward units. s (B, L+1, D) -> (B, L, C, G)"""
        a_next = self._policy_actions(self.target["actor"](s), 1)[0]  # (B, L+1, G, A)
        return self.popart.denorm_out(self.target["critics"](s[:, 1:], a_next[:, 1:]).float())

    @torch.no_grad()
    def td_targets(self, s: torch.Tensor, b: Batch) -> torch.Tensor:
        """Unnormalised multi-gamma targets. s: online encoder states (B, L+1, D). -> (B, L, G)

        a'  ~ pi_target(s_{t+1})                    (discrete: its probabilities)
        Q'  = Q_target(s_{t+1}, a') in reward units               (B, L, C, G)
        V'  = min (or mean, without DPG) over a random REDQ draw of critics
        y   = nstep(r * reward_multiplier, d, V')
        """
        cfg = self.config
        v_next = redq_reduce(self._target_q(s.detach()), cfg.redq_subset, use_min=cfg.online_coeff > 0)
        gammas = torch.tensor(cfg.all_gammas, device=v_next.device, dtype=v_next.dtype)
        valid = b.mask[:, 1:]
        rews, dones = b.rews.reshape(valid.shape), b.dones.reshape(valid.shape)
        return nstep_targets(rews * cfg.reward_multiplier, dones, valid, v_next, gammas, cfg.n_step)

    def _log_prob(self, dist, b: Batch) -> torch.Tensor:
        """log pi(a_t | s_t) of the buffer actions, every gamma. -> (B, L, G)"""
        a = b.actions.clamp(0.0, 1.0) if self.discrete else b.actions.clamp(-1.0, 1.0)
        return dist.log_prob(torch.cat([a, a[:, -1:]], 1)[:, :, None, :])[:, :-1]

    @torch.no_grad()
    def _metrics(self, loss, critic_loss, actor_loss, q_value, y, filt, logp, valid) -> dict[str, float]:
        """The logged scalars of one update. q_value: (B, L, G) in reward units."""
        return {
            "train/loss": loss.item(),
            "train/critic_loss": critic_loss.item(),
            "train/actor_loss": actor_loss.item(),
            "train/q_policy_gamma": masked_mean(q_value[..., -1], valid).item(),
            "train/target_policy_gamma": masked_mean(y[..., -1], valid).item(),
            "train/filter_rate": masked_mean(filt, valid).item(),
            "train/logp_policy_gamma": masked_mean(logp[..., -1], valid).item(),
            "train/popart_sigma": self.popart.sigma[-1].item(),
            "train/valid_frac": valid.float().mean().item(),
        }

    # ------------------------------------------------------------------- update
    def _critic_values(self, s: torch.Tensor, a_buf: torch.Tensor, a_pi: torch.Tensor):
        """Q(s_t, a_t) with gradients to the critics and s, and the DPG critics' Q(sg(s), a_pi)
        with gradients to a_pi (and, dpg_critics="amago", to the maximized copy's weights).
        -> (q, q_pi), both (B, L, C, G).

        dpg_critics="current": a discrete critic's Q table does not depend on the action, so
        both come from one table forward: q_pi weighs the detached table (the same values and
        gradients as frozen weights on sg(s), one critic forward fewer per update)."""
        critics, maximized = self.critics, self.maximized
        s_now = s[:, :-1]  # the last state has no action; AMAGO drops its values too
        if critics.discrete:
            table = critics.q_table(s_now)  # (B, L, C, G, A)
            q = (table * a_buf[:, :, None, None, :]).sum(-1)
            pi_table = table.detach() if maximized is None else maximized.q_table(s_now.detach())
            return q, (pi_table * a_pi[:, :, :-1].unsqueeze(-3)).sum(-1).mean(0)
        q_pi = self._dpg_critic_out(s_now, a_pi[:, :, :-1]).mean(0)
        return critics(s_now, a_buf[:, :, None, :]), q_pi

    def _dpg_critic_out(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The DPG critics' raw outputs at (sg(s), a) for k action samples a (k, ..., G, A):
        this update's critics with frozen weights, or (dpg_critics="amago") the maximized
        copy, whose weights take gradients. -> (k, ..., C, G[, n_out])"""
        s_k = s.detach().unsqueeze(0).expand(a.shape[0], *s.shape)
        if self.maximized is not None:
            return self.maximized(s_k, a)
        frozen = {n: p.detach() for n, p in self.critics.named_parameters()}
        frozen.update(self.critics.named_buffers())
        return functional_call(self.critics, frozen, (s_k, a))

    def forward(self, s: torch.Tensor, b: Batch) -> tuple[torch.Tensor, dict[str, float]]:
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
        cfg, popart = self.config, self.popart
        valid = b.mask[:, 1:]  # (B, L)
        a_buf = buffer_action_for_critic(self.kind, b.actions)  # (B, L, A)
        dist = self.actor(s)  # (B, L+1, G, A)
        a_pi = self._policy_actions(dist, cfg.value_samples)  # (k, B, L+1, G, A)
        q, q_pi = self._critic_values(s, a_buf, a_pi)

        y = self.td_targets(s, b)  # (B, L, G)
        popart.update(y[valid])
        y_norm = popart.normalize(y)
        critic_loss = masked_mean((popart.norm_out(q) - y_norm[:, :, None, :]).pow(2), valid)

        dpg = -popart.norm_out(q_pi.min(2).values)  # (B, L, G)
        with torch.no_grad():
            adv = q.mean(2) - q_pi.mean(2)
            filt = (adv > 0).float()
        logp = self._log_prob(dist, b)  # (B, L, G)
        actor_loss = masked_mean(cfg.online_coeff * dpg - cfg.offline_coeff * filt * logp, valid)
        loss = actor_loss + cfg.critic_loss_weight * critic_loss
        metrics = self._metrics(loss, critic_loss, actor_loss, popart.denorm_out(q.mean(2)), y, filt, logp, valid)
        return loss, metrics


def amago_loss(agent: "Agent", b: Batch) -> tuple[torch.Tensor, dict[str, float]]:
    """Total AMAGO loss on one batch of windows: s = traj(tstep(obs, rl2s), time_idxs),
    then the agent's loss object on s (either agent type)."""
    with agent.autocast():
        s = agent.states(b.obs, b.rl2s, b.time_idxs.reshape(b.mask.shape), b.mask)  # (B, L+1, D)
    return agent.loss(s.float(), b)


def loss_from_states(agent: "Agent", s: torch.Tensor, b: Batch) -> tuple[torch.Tensor, dict[str, float]]:
    """`agent.loss(s, b)`: the update from given state embeddings s (B, L+1, D)."""
    return agent.loss(s, b)

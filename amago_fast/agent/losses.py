"""The AMAGO learning update as loss functions over a padded batch of windows."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.func import functional_call

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


def _reduce_subset(q: torch.Tensor, k: int, use_min: bool, dim: int) -> torch.Tensor:
    """REDQ: pick k of the C critics along `dim` at random, then min (or mean) over them."""
    idx = torch.randperm(q.shape[dim], device=q.device)[:k]
    sub = q.index_select(dim, idx)
    return sub.min(dim).values if use_min else sub.mean(dim)


@torch.no_grad()
def td_targets(agent: "Agent", s_targ: torch.Tensor, b: "TorchBatch") -> torch.Tensor:
    """Unnormalised multi-gamma targets from the target networks. -> (B, L, G)

        a'    ~ pi_target(s_{t+1})                      (per gamma)
        Q'    = popart.denorm(Q_target(s_{t+1}, a'))    over a random REDQ subset
        V'    = min_subset Q' if online_coeff > 0 else mean_subset Q'
                (discrete: E_{a'~pi_target}[Q'(s', a')], exact)
        y     = nstep(r * reward_multiplier, d, V')
    """
    cfg, tgt = agent.config, agent.target
    s_next = s_targ[:, 1:]  # (B, L, D)
    dist = tgt["actor"](s_next)
    use_min = cfg.online_coeff > 0
    mu, sigma = agent.popart.mu, agent.popart.sigma
    if agent.discrete:
        q = tgt["critics"](s_next).float()  # (B, L, C, G, A)
        q = q * sigma[:, None] + mu[:, None]
        q = _reduce_subset(q, cfg.redq_subset, use_min, dim=2)  # (B, L, G, A)
        v_next = (dist.probs.float() * q).sum(-1)  # (B, L, G)
    else:
        q = tgt["critics"](s_next, dist.sample()).float()  # (B, L, C, G)
        v_next = _reduce_subset(agent.popart.denormalize(q), cfg.redq_subset, use_min, dim=2)
    gammas = torch.tensor(cfg.all_gammas, device=v_next.device, dtype=v_next.dtype)
    valid = b.mask[:, 1:]
    return nstep_targets(b.rews * cfg.reward_multiplier, b.dones, valid, v_next, gammas, cfg.n_step)


def amago_loss(agent: "Agent", b: "TorchBatch") -> tuple[torch.Tensor, dict[str, float]]:
    """Total AMAGO loss on one batch of windows (all gammas, all critics).

        s      = traj_encoder(tstep_encoder(obs, rl2s), time_idxs)      (B, L+1, D)
        y      = td_targets(...) ; popart.update(y[valid])               (B, L, G)
        critic = mean_valid,C,G (Q(s_t, a_t) - popart.norm(y_t))^2
        pi     = actor(s_t)
        dpg    = -mean_C Q(sg(s_t), a~pi)            (critic weights frozen; discrete:
                                                     E_{a~pi} Q, exact)
        A      = mean_C Q(s_t, a_t) - E_{a~pi} mean_C Q(s_t, a)          (no grad)
        bc     = -1[A > 0] * log pi(a_t | s_t)
        actor  = mean_valid,G (online_coeff * dpg + offline_coeff * bc)
        loss   = actor + critic_loss_weight * critic

    valid = mask[:, 1:] (transition t is real data). Returns (loss, metrics).
    """
    cfg = agent.config
    valid = b.mask[:, 1:]  # (B, L)
    with agent.autocast():
        s = agent.states(b.obs, b.rl2s, b.time_idxs)  # (B, L+1, D)
        with torch.no_grad():
            s_targ = agent.states(b.obs, b.rl2s, b.time_idxs, target=True)
    s = s.float()
    y = td_targets(agent, s_targ.float(), b)  # (B, L, G)
    agent.popart.update(y[valid], agent.critics.out, agent.critics.out_per_gamma)
    y_norm = agent.popart.normalize(y)

    s_t = s[:, :-1]  # (B, L, D)
    a_buf = b.actions  # (B, L, A)
    frozen = {n: p.detach() for n, p in agent.critics.named_parameters()}
    dist = agent.actor(s_t)  # (B, L, G, A)
    if agent.discrete:
        q_all = agent.critics(s_t)  # (B, L, C, G, A)
        q = (q_all * a_buf[:, :, None, None, :]).sum(-1)  # (B, L, C, G)
        q_frozen = functional_call(agent.critics, frozen, (s_t.detach(),))  # (B, L, C, G, A)
        probs = dist.probs
        dpg = -(probs[:, :, None] * q_frozen).sum(-1).mean(2)  # (B, L, G)
        with torch.no_grad():
            v = (probs[:, :, None] * q_all).sum(-1).mean(2)  # (B, L, G)
    else:
        q = agent.critics(s_t, a_buf[:, :, None, :])  # (B, L, C, G)
        a_pi = dist.sample(reparam=True)  # (B, L, G, A)
        dpg = -functional_call(agent.critics, frozen, (s_t.detach(), a_pi)).mean(2)  # (B, L, G)
        with torch.no_grad():
            v = torch.stack(
                [agent.critics(s_t, dist.sample()).mean(2) for _ in range(cfg.value_samples)]
            ).mean(0)
    critic_loss = masked_mean((q - y_norm[:, :, None, :]).pow(2), valid)
    with torch.no_grad():
        adv = q.mean(2) - v  # (B, L, G); PopArt's affine map keeps the sign
        filt = (adv > 0).float()
    logp = dist.log_prob(a_buf[:, :, None, :])  # (B, L, G)
    actor_loss = masked_mean(cfg.online_coeff * dpg - cfg.offline_coeff * filt * logp, valid)
    loss = actor_loss + cfg.critic_loss_weight * critic_loss
    with torch.no_grad():
        pol = valid
        metrics = {
            "train/loss": loss.item(),
            "train/critic_loss": critic_loss.item(),
            "train/actor_loss": actor_loss.item(),
            "train/q_policy_gamma": masked_mean(agent.popart.denormalize(q.mean(2))[..., -1], pol).item(),
            "train/target_policy_gamma": masked_mean(y[..., -1], pol).item(),
            "train/filter_rate": masked_mean(filt, pol).item(),
            "train/logp_policy_gamma": masked_mean(logp[..., -1], pol).item(),
            "train/popart_sigma": agent.popart.sigma[-1].item(),
            "train/valid_frac": valid.float().mean().item(),
        }
    return loss, metrics

"""A real AMAGO agent holding an amago_fast agent's weights, trained the way AMAGO's
`Experiment.train_step` trains it; shared by the whole-agent parity test and
benchmarks/update_drift.py."""

from __future__ import annotations

from functools import partial

import gymnasium as gym
import numpy as np
import torch

from amago_fast.agent import Agent, AgentConfig
from amago_fast.compat.amago_traj_weights import amago_traj_tensors, copy_traj_encoder_to_amago
from amago_fast.compat.amago_weights import copy_heads_to_amago, head_tensors

AMAGO_POS_EMB = {"fixed": "fixed", "learned": "learnable", "rotary": "rope"}  # amago_fast -> AMAGO names


def amago_twin(real_amago, ours: Agent, cfg: AgentConfig, space, A: int, multitask: bool = False):
    """AMAGO's agent of `cfg`'s shape (AMAGO's timestep encoder), holding `ours`' weights."""
    from amago.nets import actor_critic, transformer
    from amago.nets.traj_encoders import TformerTrajEncoder
    from amago.nets.tstep_encoders import FFTstepEncoder

    critic = actor_critic.NCriticsTwoHot if multitask else actor_critic.NCritics
    cls = real_amago.agent.MultiTaskAgent if multitask else real_amago.agent.Agent
    theirs = cls(
        obs_space=ours.obs_space,
        rl2_space=gym.spaces.Box(-np.inf, np.inf, (1 + A,), np.float32),
        action_space=space,
        max_seq_len=cfg.max_seq_len,
        tstep_encoder_type=partial(
            FFTstepEncoder,
            n_layers=cfg.tstep_layers,
            d_hidden=cfg.tstep_hidden,
            d_output=cfg.tstep_dim,
            normalize_inputs=True,
        ),
        traj_encoder_type=partial(
            TformerTrajEncoder,
            d_model=cfg.d_model,
            n_heads=cfg.n_heads,
            d_ff=cfg.d_ff,
            n_layers=cfg.n_layers,
            dropout_ff=cfg.dropout,
            dropout_emb=cfg.dropout,
            pos_emb=AMAGO_POS_EMB[cfg.pos_emb],
            attention_type=transformer.VanillaAttention,
        ),
        num_critics=cfg.num_critics,
        num_critics_td=cfg.redq_subset,
        online_coeff=cfg.online_coeff,
        offline_coeff=cfg.offline_coeff,
        gamma=cfg.policy_gamma,
        reward_multiplier=cfg.reward_multiplier,
        num_actions_for_value_in_actor_loss=cfg.value_samples,
        actor_type=partial(actor_critic.Actor, d_hidden=cfg.head_hidden),
        critic_type=partial(critic, d_hidden=cfg.head_hidden),
    )
    with torch.no_grad():
        for a, b in _tstep_pairs(ours, theirs):
            b.copy_(a)
        theirs.tstep_encoder.out_norm.norm.weight.copy_(ours.tstep.norm.weight)
        theirs.tstep_encoder.out_norm.norm.bias.copy_(ours.tstep.norm.bias)
    copy_traj_encoder_to_amago(ours.traj, theirs.traj_encoder)
    copy_heads_to_amago(ours, theirs)
    return theirs


class AmagoUpdates:
    """`Experiment.train_step` without accelerate: zero_grad (AdamW's own parameters only,
    so maximized_critics keeps its gradients), forward, backward, clip over every
    parameter, target sync, AdamW step, warmup schedule."""

    def __init__(self, real_amago, agent, cfg: AgentConfig):
        self.amago, self.agent, self.clip = real_amago, agent, cfg.grad_clip
        self.opt = torch.optim.AdamW(agent.trainable_params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = real_amago.utils.get_constant_schedule_with_warmup(optimizer=self.opt, num_warmup_steps=cfg.warmup)

    def step(self, batch: dict) -> tuple[float, float]:
        """One update on AMAGO's Batch fields; returns (loss, gradient norm before clipping)."""
        self.opt.zero_grad()
        loss = self.agent(self.amago.loading.Batch(**batch), log_step=False)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(self.agent.parameters(), self.clip)
        self.agent.soft_sync_targets()
        self.opt.step()
        self.sched.step()
        return loss.item(), gnorm.item()


def _tstep_pairs(ours: Agent, theirs) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(amago_fast, AMAGO) weight and bias of each timestep-encoder Linear (same layout)."""
    mine = [m for m in ours.tstep.mlp.net if isinstance(m, torch.nn.Linear)]
    base = theirs.tstep_encoder.base
    return [
        pair
        for x, y in zip(mine, [base.in_layer, *base.layers, base.out_layer], strict=True)
        for pair in ((x.weight, y.weight), (x.bias, y.bias))
    ]


def mapped_tensors(ours: Agent, theirs) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
    """(amago_fast tensor, AMAGO's in amago_fast's layout) per network group."""
    return dict(
        heads=head_tensors(ours, theirs),
        traj=[(a, b) for _, a, b in amago_traj_tensors(ours.traj, theirs.traj_encoder)],
        tstep=_tstep_pairs(ours, theirs),
    )


def weight_gap(ours: Agent, theirs) -> dict[str, float]:
    """Largest |ours - AMAGO| per network group."""
    return {k: max((a - b).abs().max().item() for a, b in v) for k, v in mapped_tensors(ours, theirs).items()}

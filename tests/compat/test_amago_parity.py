"""amago_fast's learning update against the real AMAGO's `Agent.forward`.

Both agents get the same actor / critic / PopArt weights (`copy_heads_to_amago`), the
same batch and the same random draws (one seed before each forward; both draw policy
samples, target-policy samples and REDQ indices in that order). The sequence encoders
differ between the packages, so both read the same state embeddings s directly: AMAGO
through a pass-through timestep encoder and an identity trajectory encoder, amago_fast
through `loss_from_states`. Losses, the gradients of s and of every actor and critic
weight, and the PopArt statistics after the update must agree to float tolerance.
"""

from __future__ import annotations

import os
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from amago_fast.agent import Agent, AgentConfig, TorchBatch
from amago_fast.agent.losses import loss_from_states
from amago_fast.agent.multitask import multitask_loss_from_states
from amago_fast.compat.amago_weights import amago_grads, copy_heads_to_amago

sys.path.insert(0, os.path.dirname(__file__))  # the shared test helper beside this file
from padded_windows import AMAGO_PAD as PAD  # noqa: E402
from padded_windows import padded_transitions  # noqa: E402

D, B, L = 24, 3, 9
pytestmark = pytest.mark.usefixtures("no_dynamo")


def _spaces(kind: str):
    if kind == "discrete":
        return gym.spaces.Discrete(3), 3
    return gym.spaces.Box(-1.0, 1.0, (2,), np.float32), 2


def _amago_agent(real_amago, space, A: int, multitask: bool = False, **kw):
    from amago.nets.traj_encoders import TrajEncoder
    from amago.nets.tstep_encoders import TstepEncoder

    class PassThroughTstep(TstepEncoder):
        emb_dim = D

        def inner_forward(self, obs, rl2s, log_dict=None):
            return obs["s"]

    class IdentityTraj(TrajEncoder):
        emb_dim = D

        def forward(self, seq, time_idxs, hidden_state=None, log_dict=None):
            return seq, hidden_state

    # gymnasium 0.29 and 1.x both have these spaces; AMAGO only reads shapes and types
    obs_space = gym.spaces.Dict({"s": gym.spaces.Box(-np.inf, np.inf, (D,), np.float32)})
    rl2_space = gym.spaces.Box(-np.inf, np.inf, (1 + A,), np.float32)
    cls = real_amago.agent.MultiTaskAgent if multitask else real_amago.agent.Agent
    return cls(
        obs_space=obs_space,
        rl2_space=rl2_space,
        action_space=space,
        max_seq_len=L + 1,
        tstep_encoder_type=PassThroughTstep,
        traj_encoder_type=IdentityTraj,
        **kw,
    )


def _batch(kind: str, A: int, seed: int, lengths=(L, 6, 2)):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(B, L + 1, D, generator=g)
    actions, rews, dones, mask = padded_transitions(g, kind, A, L, lengths)
    rl2s = torch.randn(B, L + 1, 1 + A, generator=g)
    for i, n in enumerate(lengths):  # right padding, AMAGO's pad value everywhere
        rl2s[i, n + 1 :] = PAD
        s[i, n + 1 :] = PAD
    return s, actions, rews, dones, rl2s, mask


def _run_pair(real_amago, kind: str, seed: int = 0, multitask: bool = False, **cfg_kw):
    space, A = _spaces(kind)
    popart = cfg_kw.get("popart", True)
    n_step = cfg_kw.get("n_step", 1)
    make_cfg = AgentConfig.multitask if multitask else AgentConfig
    cfg = make_cfg(
        d_model=D,
        n_heads=2,
        n_layers=1,
        d_ff=32,
        max_seq_len=L + 1,
        tstep_dim=16,
        tstep_hidden=16,
        dropout=0.0,
        **cfg_kw,
    )
    torch.manual_seed(seed)
    ours = Agent(gym.spaces.Dict({"observation": gym.spaces.Box(-1, 1, (D,), np.float32)}), space, cfg)
    theirs = _amago_agent(
        real_amago,
        space,
        A,
        multitask=multitask,
        num_critics=cfg.num_critics,
        num_critics_td=cfg.redq_subset,
        online_coeff=cfg.online_coeff,
        offline_coeff=cfg.offline_coeff,
        critic_loss_weight=cfg.critic_loss_weight,
        gamma=cfg.policy_gamma,
        reward_multiplier=cfg.reward_multiplier,
        popart=popart,
        n_step=n_step,
        num_actions_for_value_in_actor_loss=cfg.value_samples,
    )
    # A PopArt state away from its initial values, so its affine map is exercised.
    with torch.no_grad():
        G = len(cfg.all_gammas)
        ours.popart.mu.copy_(torch.linspace(-2, 3, G))
        ours.popart.nu.copy_(ours.popart.mu**2 + torch.linspace(0.5, 4, G))
        ours.popart.w.copy_(torch.linspace(0.7, 1.3, G))
        ours.popart.b.copy_(torch.linspace(-0.2, 0.2, G))
        ours.popart.t.fill_(7.0)
        for p in ours.target.parameters():  # targets that lag the online heads
            p.add_(0.05 * torch.randn_like(p))
    copy_heads_to_amago(ours, theirs, state_perm=None)  # both heads read the same states s

    s, actions, rews, dones, rl2s, mask = _batch(kind, A, seed)
    s_ours, s_theirs = s.clone().requires_grad_(True), s.clone().requires_grad_(True)
    b = TorchBatch(
        obs={},
        rl2s=rl2s,
        time_idxs=torch.arange(L + 1).repeat(B, 1),
        actions=actions,
        rews=rews[..., 0],
        dones=dones[..., 0] > 0.5,
        mask=mask,
    )
    b.rews = torch.where(mask[:, 1:], b.rews, torch.zeros_like(b.rews))
    b.dones = b.dones & mask[:, 1:]
    torch.manual_seed(100 + seed)
    loss_fn = multitask_loss_from_states if multitask else loss_from_states
    loss_ours, metrics = loss_fn(ours, s_ours, b)
    loss_ours.backward()
    ours.last_metrics = metrics

    batch = real_amago.loading.Batch(
        obs={"s": s_theirs},
        rl2s=rl2s,
        rews=rews,
        dones=dones,
        actions=actions,
        time_idxs=torch.arange(L + 1).repeat(B, 1)[..., None],
    )
    torch.manual_seed(100 + seed)
    loss_theirs = theirs(batch, log_step=False)
    loss_theirs.backward()
    return ours, theirs, (loss_ours, loss_theirs), (s_ours, s_theirs)


CASES = [
    pytest.param("discrete", {}, id="discrete"),
    pytest.param("box", {}, id="continuous"),
    pytest.param("discrete", {"n_step": 3}, id="discrete-nstep3"),
    pytest.param("box", {"popart": False, "value_samples": 2}, id="continuous-no-popart-k2"),
    pytest.param("box", {"online_coeff": 0.0, "offline_coeff": 1.0}, id="continuous-bc-only"),
]


@pytest.mark.parametrize("kind,cfg_kw", CASES)
def test_losses_gradients_and_popart_match_amago(real_amago, kind, cfg_kw):
    ours, theirs, (l_ours, l_theirs), (s_ours, s_theirs) = _run_pair(real_amago, kind, **cfg_kw)
    tol = dict(rtol=2e-5, atol=2e-5)
    torch.testing.assert_close(l_ours, l_theirs, **tol)
    assert ours.last_metrics["train/critic_loss"] > 0 and ours.last_metrics["train/actor_loss"] != 0
    torch.testing.assert_close(s_ours.grad, s_theirs.grad, **tol)
    for name, g_ours, g_theirs in amago_grads(ours, theirs, state_perm=None):
        assert g_ours is not None and g_theirs is not None, name
        torch.testing.assert_close(g_ours, g_theirs, **tol, msg=lambda m: f"{name}: {m}")
    p, q = ours.popart, theirs.popart
    for a, b_ in ((p.mu, q.mu), (p.nu, q.nu), (p.w, q.w), (p.b, q.b)):
        torch.testing.assert_close(a, b_.view(-1), **tol)


MULTITASK_CASES = [
    pytest.param({}, id="multitask-defaults"),
    pytest.param({"online_coeff": 0.5, "value_samples": 2}, id="multitask-with-dpg"),
    pytest.param({"n_step": 2, "popart": False}, id="multitask-nstep2-no-popart"),
]


@pytest.mark.parametrize("cfg_kw", MULTITASK_CASES)
def test_multitask_update_matches_amagos_multitask_agent(real_amago, cfg_kw):
    # AMAGO-2's agent, continuous actions. (AMAGO's MultiTaskAgent cannot train discrete
    # actions: it scores the probability-clipped buffer action under a OneHotCategorical,
    # whose support check rejects it. amago_fast scores the one-hot itself.)
    ours, theirs, (l_ours, l_theirs), (s_ours, s_theirs) = _run_pair(real_amago, "box", multitask=True, **cfg_kw)
    tol = dict(rtol=5e-5, atol=5e-5)
    torch.testing.assert_close(l_ours, l_theirs, **tol)
    torch.testing.assert_close(s_ours.grad, s_theirs.grad, **tol)
    for name, g_ours, g_theirs in amago_grads(ours, theirs, state_perm=None):
        assert g_ours is not None and g_theirs is not None, name
        torch.testing.assert_close(g_ours, g_theirs, **tol, msg=lambda m: f"{name}: {m}")
    for key, ref in (("train/critic_loss", "Critic Loss"), ("train/actor_loss", "Actor Loss")):
        assert ours.last_metrics[key] == pytest.approx(
            float(torch.as_tensor(theirs.update_info[ref]).detach()), rel=5e-5, abs=5e-5
        ), key
    torch.testing.assert_close(ours.popart.mu, theirs.popart.mu.view(-1), **tol)


@pytest.mark.parametrize("kind", ["discrete", "box"])
def test_critic_and_actor_terms_match_amago_separately(real_amago, kind):
    # The total could hide two compensating errors: compare AMAGO's logged terms too.
    ours, theirs, _, _ = _run_pair(real_amago, kind, seed=3)
    for key, ref in (("train/critic_loss", "Critic Loss"), ("train/actor_loss", "Actor Loss")):
        assert ours.last_metrics[key] == pytest.approx(
            float(torch.as_tensor(theirs.update_info[ref]).detach()), rel=2e-5, abs=2e-5
        ), key


def test_nstep_targets_equal_amago_nstep_return(real_amago):
    from amago.agent import nstep_return

    from amago_fast.agent import nstep_targets

    g = torch.Generator().manual_seed(1)
    Bn, Ln, G = 4, 11, 3
    r = torch.randn(Bn, Ln, generator=g)
    d = torch.rand(Bn, Ln, generator=g) < 0.2
    valid = torch.ones(Bn, Ln, dtype=torch.bool)
    valid[1, 7:] = False
    valid[3, 2:] = False
    v = torch.randn(Bn, Ln, G, generator=g)
    gammas = torch.tensor([0.5, 0.9, 0.99])
    for n in (1, 2, 4):
        ours = nstep_targets(r, d & valid, valid, v, gammas, n)
        five = lambda x: x.reshape(Bn, Ln, 1, -1, 1).expand(Bn, Ln, 1, G, 1).float()  # noqa: E731
        theirs = nstep_return(
            five(r),
            five((d & valid).float()),
            v.reshape(Bn, Ln, 1, G, 1),
            gammas[:, None],
            n,
            valid.float().reshape(Bn, Ln, 1, 1, 1),
        )
        torch.testing.assert_close(ours[valid], theirs[..., 0, :, 0][valid], rtol=1e-5, atol=1e-5)

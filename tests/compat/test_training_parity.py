"""Whole agents trained side by side: amago_fast's `Agent.train_step` against the real AMAGO's
`Agent` under `Experiment.train_step`'s sequence (zero_grad, forward, backward, clip over
all its parameters, target sync, AdamW step, warmup schedule).

Both start from the same weights in every network (timestep encoder, Transformer, actor,
critics, their targets, PopArt) and train on the same padded batches with the same random
draws. With AMAGO's behaviour selected where amago_fast's default differs
(`dpg_critics="amago"`: the DPG and V(s) read a critic copy one update old whose
gradients are never zeroed and count in the clip norm; `warmup_from_zero=True`), every
loss, every clipped gradient norm and every weight after several updates agree to float
rounding. With amago_fast's defaults the weights drift apart by orders of magnitude more,
which the last test pins, so the comparison can tell the two behaviours apart.
"""

from __future__ import annotations

import os
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from amago_fast.agent import Agent, AgentConfig, TorchBatch
from amago_fast.compat.amago_weights import copy_heads_from_amago, copy_heads_to_amago

sys.path.insert(0, os.path.dirname(__file__))  # the shared test helpers beside this file
from amago_twin import AmagoUpdates, amago_twin, weight_gap  # noqa: E402
from padded_windows import AMAGO_PAD as PAD  # noqa: E402
from padded_windows import padded_transitions  # noqa: E402

OBS, B, L, HIDDEN = 5, 4, 10, 32
LENGTHS = (L, 7, 3, L)  # transitions per window; the rest is padding
STEPS = 7  # past the warmup of 4 updates
pytestmark = pytest.mark.usefixtures("no_dynamo")


def _configs(multitask: bool, amago_behaviour: bool, **kw) -> AgentConfig:
    """Small agents; amago_behaviour selects AMAGO's where amago_fast's default differs
    (keyword arguments override anything)."""
    make = AgentConfig.multitask if multitask else AgentConfig
    amago = dict(dpg_critics="amago" if amago_behaviour else "current", warmup_from_zero=amago_behaviour)
    base = dict(
        d_model=32,
        n_heads=4,
        n_layers=2,
        d_ff=64,
        tstep_hidden=32,
        tstep_dim=16,
        head_hidden=HIDDEN,
        max_seq_len=L + 1,
        dropout=0.0,
        pos_emb="rotary",
        lr=1e-3,  # large enough that a behaviour difference shows within a few updates
        warmup=4,
    )
    return make(**{**base, **amago, **kw})


def _space(kind: str):
    return (gym.spaces.Discrete(3), 3) if kind == "discrete" else (gym.spaces.Box(-1, 1, (2,), np.float32), 2)


def _batches(kind: str, A: int, seed: int):
    """The same padded windows for both: amago_fast's TorchBatch (mask) and AMAGO's Batch
    (padding filled with its pad value 4.0)."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(B, L + 1, OBS, generator=g)
    actions, rews, dones, mask = padded_transitions(g, kind, A, L, LENGTHS)
    rl2s = torch.cat([torch.zeros(B, 1, 1 + A), torch.cat([rews, actions], -1)], 1)
    for i, n in enumerate(LENGTHS):
        for x in (rl2s, obs):
            x[i, n + 1 :] = PAD
    t = torch.arange(L + 1).repeat(B, 1)
    ours = TorchBatch(
        obs={"observation": obs},
        rl2s=rl2s,
        time_idxs=t,
        actions=actions,
        rews=torch.where(mask[:, 1:], rews[..., 0], 0.0),
        dones=(dones[..., 0] > 0.5) & mask[:, 1:],
        mask=mask,
    )
    return ours, dict(
        obs={"observation": obs}, rl2s=rl2s, rews=rews, dones=dones, actions=actions, time_idxs=t[..., None]
    )


def _train_pair(real_amago, kind: str, multitask: bool, amago_behaviour: bool, **kw):
    """STEPS updates of both; returns (ours, theirs, [(our loss, grad norm), ...], [AMAGO's ...])."""
    space, A = _space(kind)
    cfg = _configs(multitask, amago_behaviour, **kw)
    torch.manual_seed(0)
    ours = Agent(gym.spaces.Dict({"observation": gym.spaces.Box(-1, 1, (OBS,), np.float32)}), space, cfg)
    theirs = amago_twin(real_amago, ours, cfg, space, A, multitask)
    updates = AmagoUpdates(real_amago, theirs, cfg)
    ours.train(), theirs.train()
    log_ours, log_theirs = [], []
    for k in range(STEPS):
        b_ours, b_theirs = _batches(kind, A, 100 + k)
        torch.manual_seed(1000 + k)  # the same draws on both sides, in AMAGO's order
        m = ours.train_step(b_ours)
        log_ours.append((m["train/loss"], m["train/grad_norm"]))
        torch.manual_seed(1000 + k)
        log_theirs.append(updates.step(b_theirs))
    return ours, theirs, log_ours, log_theirs


CASES = [
    pytest.param("discrete", False, {}, id="discrete"),
    # AMAGO's default positions: its state channels are a permutation of ours, heads included
    pytest.param("discrete", False, {"pos_emb": "fixed"}, id="discrete-fixed-positions"),
    pytest.param("box", False, {"value_samples": 2}, id="continuous-k2"),
    pytest.param("box", True, {"online_coeff": 0.5, "value_samples": 2}, id="multitask-with-dpg"),
    # no DPG: the copy takes no gradient, but V(s) still reads it one update late
    pytest.param("discrete", False, {"online_coeff": 0.0, "offline_coeff": 1.0}, id="discrete-bc-only"),
]


@pytest.mark.parametrize("kind,multitask,kw", CASES)
def test_training_with_amagos_behaviour_tracks_amago(real_amago, kind, multitask, kw):
    ours, theirs, log_ours, log_theirs = _train_pair(real_amago, kind, multitask, True, **kw)
    for k, ((l_o, g_o), (l_t, g_t)) in enumerate(zip(log_ours, log_theirs)):
        assert l_o == pytest.approx(l_t, rel=2e-5, abs=2e-5), f"update {k}: loss"
        # the clip norm includes AMAGO's never-zeroed maximized-critic gradients
        assert g_o == pytest.approx(g_t, rel=2e-5), f"update {k}: gradient norm before clipping"
    gap = weight_gap(ours, theirs)
    assert max(gap.values()) < 5e-6, gap
    torch.testing.assert_close(ours.popart.mu, theirs.popart.mu.view(-1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.tstep.in_norm.mu, theirs.tstep_encoder.in_norm.mu, rtol=1e-5, atol=1e-6)
    if kw.get("online_coeff", 1.0) > 0:
        assert ours.maximized.out.weight.grad is not None  # DPG gradients carried over, never zeroed


@pytest.mark.parametrize("pos_emb", ["rotary", "fixed"])
def test_heads_copied_back_from_amago_keep_its_dpg_copy_apart(real_amago, pos_emb):
    ours, theirs, _, _ = _train_pair(real_amago, "discrete", False, True, pos_emb=pos_emb)
    with torch.no_grad():  # a copy that differs from AMAGO's critics
        theirs.maximized_critics.net.output_layer.bias.add_(0.25)
        theirs.critics.net.output_layer.bias.sub_(0.5)
    copy_heads_from_amago(theirs, ours)
    assert weight_gap(ours, theirs)["heads"] == 0.0  # maximized_critics went to ours.maximized
    assert not torch.equal(ours.maximized.out.bias, ours.critics.out.bias)


@pytest.mark.parametrize("default", [{"dpg_critics": "current"}, {"warmup_from_zero": False}], ids=str)
def test_amago_fast_defaults_are_told_apart(real_amago, default):
    """Each of amago_fast's defaults alone moves the weights away from AMAGO's by far more
    than the rounding the test above allows."""
    ours, theirs, _, _ = _train_pair(real_amago, "discrete", False, True, **default)
    assert max(weight_gap(ours, theirs).values()) > 1e-4


def test_a_state_perm_that_is_not_a_permutation_is_refused(real_amago):
    ours, theirs, _, _ = _train_pair(real_amago, "discrete", False, True)
    with pytest.raises(ValueError, match="state_perm"):
        copy_heads_to_amago(ours, theirs, state_perm=[0] * 32)
    with pytest.raises(ValueError, match="state_perm"):
        copy_heads_from_amago(theirs, ours, state_perm=list(range(31)))
    with pytest.raises(ValueError, match="state_perm"):
        copy_heads_to_amago(ours, theirs, state_perm="fixed")

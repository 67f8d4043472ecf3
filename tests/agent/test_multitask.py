"""AMAGO-2's multi-task update: value bins, and the reward-scale invariance it is for."""

import copy

import numpy as np
import pytest
import torch

from amago_fast.agent import AgentConfig
from amago_fast.agent.losses import amago_loss
from amago_fast.nets.heads import TwoHotValues
from amago_fast.replay import Batch


def _grads(agent, batch):
    torch.manual_seed(1)
    loss, m = amago_loss(agent, Batch.as_tensors(batch, agent.device))
    loss.backward()
    norm = lambda mod: torch.sqrt(sum((p.grad**2).sum() for p in mod.parameters() if p.grad is not None))  # noqa: E731
    return {n: p.grad.clone() for n, p in agent.actor.named_parameters()}, float(norm(agent.critics)), m


def _two_task_batch(agent, random_batch, scale_b: float):
    b = random_batch(agent, B=4, L=10)
    b["rews"] = b["rews"].abs() + 0.5
    b["rews"][2:] *= scale_b  # rows 2-3: the second task, its rewards scaled
    return b


@pytest.mark.parametrize("space", ["box", "discrete"])
def test_scaling_one_tasks_rewards_by_100_leaves_the_update_unchanged(make_agent, random_batch, space):
    mt = make_agent(space, agent_type="multitask", online_coeff=0.0, offline_coeff=1.0, value_samples=3)
    g1, n1, m1 = _grads(copy.deepcopy(mt), _two_task_batch(mt, random_batch, 1.0))
    g100, n100, m100 = _grads(copy.deepcopy(mt), _two_task_batch(mt, random_batch, 100.0))
    # the actor's update reads only the sign of the advantage: identical
    for n in g1:
        torch.testing.assert_close(g1[n], g100[n], msg=n)
    assert m1["train/filter_rate"] == m100["train/filter_rate"]
    # the critic's cross-entropy gradient stays bounded whatever the reward scale ...
    assert n100 / n1 < 3.0, (n1, n100)
    # ... where AMAGO's regression critic (PopArt off, to isolate the loss) grows with it
    plain = make_agent(space, popart=False)
    _, p1, _ = _grads(copy.deepcopy(plain), _two_task_batch(plain, random_batch, 1.0))
    _, p100, _ = _grads(copy.deepcopy(plain), _two_task_batch(plain, random_batch, 100.0))
    assert p100 / p1 > 20.0, (p1, p100)


def test_two_hot_labels_put_the_mean_on_the_target():
    tv = TwoHotValues(bins=64, vmin=-100.0, vmax=100.0)
    y = torch.tensor([-57.0, -1.3, 0.0, 0.4, 12.0, 99.0, 500.0])
    lab = tv.labels(y)
    torch.testing.assert_close(lab.sum(-1), torch.ones(7))
    assert ((lab > 0).sum(-1) <= 2).all()
    # expected bin centre of the labels = symlog(y) inside the support (clipped outside)
    e = (lab * tv.centres).sum(-1)
    inside = y.abs() <= 100
    torch.testing.assert_close(e[inside], torch.sign(y[inside]) * torch.log1p(y[inside].abs()))
    assert e[-1] == pytest.approx(float(tv.centres[-1]))
    # logits that are log(labels) decode back to the value (symexp of the mean)
    torch.testing.assert_close(tv.value(torch.log(lab.clamp_min(1e-12)))[inside], y[inside], rtol=1e-4, atol=1e-4)


def test_multitask_agent_trains_and_acts_for_every_action_kind(make_agent, random_batch, space):
    agent = make_agent(space, agent_type="multitask", online_coeff=0.0, offline_coeff=1.0, value_samples=3)
    for _ in range(2):
        m = agent.train_step(random_batch(agent))
    assert np.isfinite(m["train/loss"]) and m["train/skipped_nonfinite"] == 0.0
    state = agent.init_state(2)
    a, _ = agent.get_actions(
        {"observation": np.zeros((2, 3), np.float32)},
        np.zeros((2, 1 + agent.action_dim), np.float32),
        np.zeros(2, np.int64),
        state,
    )
    assert len(a) == 2


def test_multitask_config_defaults_and_validation():
    cfg = AgentConfig.multitask()
    assert (cfg.agent_type, cfg.online_coeff, cfg.offline_coeff, cfg.value_samples) == ("multitask", 0.0, 1.0, 3)
    with pytest.raises(ValueError, match="agent_type"):
        AgentConfig(agent_type="mtask")
    with pytest.raises(ValueError, match="value_min"):
        AgentConfig(value_min=5.0, value_max=1.0)

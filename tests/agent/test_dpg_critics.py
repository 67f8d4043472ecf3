"""AgentConfig.dpg_critics="amago" (AMAGO's maximized_critics) and warmup_from_zero, on their own.

Whole-agent equality with the real AMAGO is tests/compat/test_training_parity.py; these
pin each piece without AMAGO: which terms read the copy, its carried gradients through a
skipped step, loading weights across the two modes, and the warmup schedule.
"""

from __future__ import annotations

import pytest
import torch

from amago_fast.agent import TorchBatch
from amago_fast.agent.losses import amago_loss


@pytest.fixture
def metrics_of(random_batch):
    def metrics(agent, seed: int = 0) -> dict[str, float]:
        agent.eval()  # input statistics and power iterations stay put between calls
        torch.manual_seed(seed)
        return amago_loss(agent, TorchBatch.as_tensors(random_batch(agent), agent.device))[1]

    return metrics


def test_v_of_s_reads_the_copy_in_amagos_agent_only(make_agent, metrics_of):
    # A copy whose Q is 1000 higher makes V(s) > Q(s, a) everywhere: no action passes the
    # advantage filter if, and only if, V(s) reads the copy (AMAGO's Agent does).
    agent = make_agent(dpg_critics="amago")
    assert metrics_of(agent)["train/filter_rate"] > 0.1
    with torch.no_grad():
        agent.maximized.out.bias += 1000.0
    assert metrics_of(agent)["train/filter_rate"] == 0.0
    # AMAGO-2's multi-task agent reads the critics for V(s) and the copy for DPG only
    mt = make_agent("box", agent_type="multitask", online_coeff=0.5, offline_coeff=1.0, dpg_critics="amago")
    before = metrics_of(mt)
    with torch.no_grad():
        mt.maximized.out.bias += 1000.0
    after = metrics_of(mt)
    assert after["train/filter_rate"] == before["train/filter_rate"]
    assert after["train/actor_loss"] != before["train/actor_loss"]  # its DPG term moved


def test_the_copy_exists_only_where_read(make_agent):
    current = make_agent(dpg_critics="current")
    assert not current.carried_grads() and not hasattr(current, "maximized")
    bc_only = make_agent("box", agent_type="multitask", online_coeff=0.0, offline_coeff=1.0, dpg_critics="amago")
    assert not hasattr(bc_only, "maximized")  # AMAGO-2 without DPG never reads it
    no_dpg = make_agent(online_coeff=0.0, dpg_critics="amago")  # V(s) still reads it, without gradients
    assert hasattr(no_dpg, "maximized") and not no_dpg.carried_grads()


def test_copy_trails_the_critics_and_carries_gradients_through_a_skipped_step(make_agent, random_batch):
    agent = make_agent(dpg_critics="amago")
    batch = random_batch(agent)
    agent.train_step(batch)
    w = agent.critics.out.weight.detach().clone()
    carried = {n: p.grad.clone() for n, p in agent.carried_grads().items()}
    assert carried and all(g.abs().sum() > 0 for g in carried.values())
    assert not torch.equal(agent.maximized.out.weight, agent.critics.out.weight)  # one update behind

    loss, metrics = amago_loss(agent, TorchBatch.as_tensors(batch, agent.device))
    metrics = agent.apply_loss(loss * float("nan"), metrics)  # a diverged batch: skipped
    assert metrics["train/skipped_nonfinite"] == 1.0
    for n, p in agent.carried_grads().items():
        assert torch.equal(p.grad, carried[n]), n  # as if the step never happened
    assert torch.equal(agent.critics.out.weight, w)

    agent.train_step(batch)  # the next update adds to them, and refreshes the copy first
    assert torch.equal(agent.maximized.out.weight, w)
    assert any(not torch.equal(p.grad, carried[n]) for n, p in agent.carried_grads().items())


def test_weights_load_across_the_two_modes(make_agent):
    current, amago = make_agent(dpg_critics="current"), make_agent(dpg_critics="amago")
    with torch.no_grad():
        current.critics.out.bias += 0.5
    amago.load_state_dict(current.state_dict())  # no copy saved: it starts as the critics
    assert torch.equal(amago.maximized.out.bias, current.critics.out.bias)
    with torch.no_grad():
        amago.maximized.out.bias += 1.0
    make_agent(dpg_critics="current").load_state_dict(amago.state_dict())  # the copy is dropped


@pytest.mark.parametrize(
    "from_zero,expected", [(True, [0.0, 0.25, 0.5, 0.75, 1.0]), (False, [0.25, 0.5, 0.75, 1.0, 1.0])]
)
def test_warmup_schedule(make_agent, from_zero, expected):
    from amago_fast.agent.model import warmup_factor

    agent = make_agent(warmup=4, warmup_from_zero=from_zero, lr=2.0)
    assert [warmup_factor(agent.config, k) for k in range(5)] == pytest.approx(expected)
    assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(2.0 * expected[0])  # update 0's


def test_amagos_first_update_changes_no_weight(make_agent, random_batch):
    agent = make_agent(warmup=4, warmup_from_zero=True)
    before = {n: p.detach().clone() for n, p in agent.named_parameters() if not n.startswith("target.")}
    agent.train_step(random_batch(agent))
    assert all(torch.equal(p, before[n]) for n, p in agent.named_parameters() if n in before)
    agent.train_step(random_batch(agent, seed=1))
    assert any(not torch.equal(p, before[n]) for n, p in agent.named_parameters() if n in before)

import numpy as np
import pytest
import torch

from amago_fast.agent import AmagoLoss, MultiTaskLoss, TorchBatch, amago_loss, nstep_targets
from amago_fast.replay import Batch


def _brute_nstep(r, d, valid, v, gammas, n):
    B, L, G = v.shape
    y = np.zeros((B, L, G))
    for b in range(B):
        for t in range(L):
            for gi, g in enumerate(gammas):
                ret, disc, boot = 0.0, 1.0, 0.0
                for k in range(n):
                    i = t + k
                    if i >= L or not valid[b, i]:
                        break
                    ret += disc * r[b, i]
                    disc *= g
                    boot = 0.0 if d[b, i] else disc * v[b, i, gi]
                    if d[b, i]:
                        break
                y[b, t, gi] = ret + boot
    return y


@pytest.mark.parametrize("n", [1, 2, 5])
def test_nstep_targets_match_brute_force(n):
    g = np.random.default_rng(n)
    B, L, G = 3, 9, 2
    r = g.normal(size=(B, L)).astype(np.float32)
    d = g.random((B, L)) < 0.15
    valid = np.ones((B, L), bool)
    valid[1, 6:] = False
    valid[2, 2:] = False
    v = g.normal(size=(B, L, G)).astype(np.float32)
    gammas = [0.9, 0.5]
    ref = _brute_nstep(r, d, valid, v, gammas, n)
    out = nstep_targets(torch.tensor(r), torch.tensor(d), torch.tensor(valid), torch.tensor(v), torch.tensor(gammas), n)
    np.testing.assert_allclose(out.numpy()[valid], ref[valid], rtol=1e-5, atol=1e-5)


def test_one_step_target_is_r_plus_gamma_v():
    r = torch.tensor([[1.0, 2.0]])
    d = torch.tensor([[False, True]])
    v = torch.tensor([[[10.0], [20.0]]])
    y = nstep_targets(r, d, torch.ones(1, 2, dtype=torch.bool), v, torch.tensor([0.5]), 1)
    torch.testing.assert_close(y, torch.tensor([[[6.0], [2.0]]]))


def test_loss_is_finite_and_every_online_parameter_gets_gradient(space, make_agent, random_batch):
    agent = make_agent(space)
    b = Batch.as_tensors(random_batch(agent), agent.device)
    loss, metrics = amago_loss(agent, b)
    assert torch.isfinite(loss) and all(np.isfinite(v) for v in metrics.values())
    loss.backward()
    missing = [
        n for n, p in agent.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)
    ]
    # learned-position table rows for unused time steps aside, all online weights learn
    assert missing == []
    assert all(p.grad is None for p in agent.target.parameters())


def test_padding_does_not_change_the_loss(space, make_agent, random_batch):
    agent = make_agent(space)
    raw = random_batch(agent, lengths=[12, 7, 3, 12])
    torch.manual_seed(5)
    l1, _ = amago_loss(agent, Batch.as_tensors(raw, agent.device))
    for k in ("rews", "actions"):
        raw[k][1, 7:] = 1e3 * torch.randn_like(raw[k][1, 7:])
    raw["obs"]["observation"][2, 4:] = 1e3
    raw["rl2s"][2, 4:] = -1e3
    agent2 = make_agent(space)
    torch.manual_seed(5)
    l2, _ = amago_loss(agent2, Batch.as_tensors(raw, agent2.device))
    torch.testing.assert_close(l1, l2, rtol=1e-5, atol=1e-5)


def test_train_step_changes_weights_and_moves_targets_by_tau(make_agent, random_batch):
    agent = make_agent("discrete", tau=0.5)
    before = agent.actor.net[0].weight.detach().clone()
    tgt_before = agent.target["actor"].net[0].weight.detach().clone()
    agent.train_step(random_batch(agent))
    after = agent.actor.net[0].weight.detach()
    assert not torch.equal(before, after)
    # AMAGO's order: the EMA reads the online weights before the optimizer step
    torch.testing.assert_close(agent.target["actor"].net[0].weight, 0.5 * tgt_before + 0.5 * before)


@pytest.mark.parametrize("space_name", ["discrete", "box"])
def test_popart_update_preserves_unnormalised_outputs_of_online_and_target_critics(make_agent, space_name):
    # One PopArt layer serves both critics, so an update must leave both unnormalised
    # outputs where they were (the old per-critic rescale left the target's behind).
    agent = make_agent(space_name, popart_beta=0.3)
    G, A = len(agent.config.all_gammas), agent.action_dim
    s = torch.randn(5, 32)
    a = torch.softmax(torch.randn(5, G, A), -1) if agent.discrete else torch.rand(5, G, A) * 2 - 1
    with torch.no_grad():
        agent.target["critics"].out.bias.add_(0.5)  # a target that differs from the online critic
        before = [agent.popart.denorm_out(c(s, a)) for c in (agent.critics, agent.target["critics"])]
        agent.popart.update(torch.randn(40, G) * 7 + 3)
        after = [agent.popart.denorm_out(c(s, a)) for c in (agent.critics, agent.target["critics"])]
    assert agent.popart.mu.abs().min() > 0.1 and (agent.popart.sigma - 10).abs().max() > 1
    for x, y in zip(before, after):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-4)


def test_popart_ignores_non_finite_targets(make_agent):
    agent = make_agent("discrete")
    mu = agent.popart.mu.clone()
    agent.popart.update(torch.full((4, len(agent.config.all_gammas)), float("nan")))
    torch.testing.assert_close(agent.popart.mu, mu)


def test_continuous_critic_reads_the_discount_as_an_input(make_agent):
    agent = make_agent("box")
    s = torch.randn(3, 32)
    a = torch.rand(3, 7, 2)
    q = agent.critics(s, a)  # (3, C, G)
    shared = agent.critics(s, a[:, :1])
    for g in range(7):
        one = agent.critics(s, a[:, g : g + 1].expand(3, 7, 2))
        torch.testing.assert_close(q[:, :, g], one[:, :, g])
    # one shared action still gives a different value per gamma (the discount feature)
    assert (shared[..., 0] - shared[..., -1]).abs().min() > 0


def test_short_training_fits_a_constant_reward(make_agent, random_batch):
    # critics must regress towards r / (1 - gamma) for a never-ending constant reward
    agent = make_agent(
        "discrete", lr=3e-3, gammas=[0.5], policy_gamma=0.75, popart=False, tau=0.1, reward_multiplier=1.0
    )
    batch = random_batch(agent, B=2, L=6)
    batch["rews"][:] = 1.0
    for _ in range(300):
        m = agent.train_step(batch)
    assert abs(m["train/q_policy_gamma"] - 4.0) < 0.6, m


def test_malformed_batch_is_a_value_error(make_agent, random_batch):
    agent = make_agent("discrete")
    b = random_batch(agent)
    b["mask"] = b["mask"][:, :-1]
    with pytest.raises(ValueError, match="mask"):
        agent.train_step(b)


def test_actor_and_critic_terms_equal_a_restatement_of_the_update(make_agent, random_batch):
    """The discrete update written out by hand from the heads: pins the advantage filter's
    sign, the PopArt target normalisation and the DPG min over critics (no AMAGO needed)."""
    import copy

    from amago_fast.agent.losses import masked_mean
    from amago_fast.nets.heads import buffer_action_for_critic

    agent = make_agent("discrete", popart_beta=0.2, online_coeff=0.7, offline_coeff=0.4)
    b = Batch.as_tensors(random_batch(agent, lengths=[12, 5, 9, 12]), agent.device)
    with torch.no_grad():
        agent.popart.mu.copy_(torch.linspace(-1, 2, agent.popart.mu.numel()))
    s = torch.randn(4, 13, 32)
    before = copy.deepcopy(agent)
    torch.manual_seed(0)
    _, m = agent.loss(s, b)
    torch.manual_seed(0)
    y = before.loss.td_targets(s, b)  # same REDQ draw, pre-update PopArt (as inside the loss)

    valid = b.mask[:, 1:]
    pa = agent.popart  # after the update, as the loss uses it
    with torch.no_grad():
        dist = agent.actor(s)
        probs = dist.probs  # (B, L+1, G, A)
        table = agent.critics.q_table(s)  # (B, L+1, C, G, A)
        q_pi = (table * probs[:, :, None]).sum(-1)[:, :-1]  # (B, L, C, G)
        a_c = buffer_action_for_critic("discrete", b.actions)[:, :, None, None, :]
        q = (table[:, :-1] * a_c).sum(-1)
        adv = q.mean(2) - q_pi.mean(2)
        logp = torch.log(
            probs[:, :-1].gather(-1, b.actions.argmax(-1)[:, :, None, None].expand(-1, -1, probs.shape[2], 1))
        )[..., 0]
        dpg = -(pa.w * q_pi.min(2).values + pa.b)
        actor = masked_mean(0.7 * dpg - 0.4 * (adv > 0).float() * logp, valid)
        y_norm = (y - pa.mu) / pa.sigma
        critic = masked_mean((pa.w * q + pa.b - y_norm[:, :, None]).pow(2), valid)
    assert 0 < m["train/filter_rate"] < 1
    assert m["train/actor_loss"] == pytest.approx(actor.item(), rel=1e-5, abs=1e-6)
    assert m["train/critic_loss"] == pytest.approx(critic.item(), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("agent_type", ["agent", "multitask"])
def test_the_loss_owns_targets_and_popart_under_the_agents_checkpoint_keys(make_agent, agent_type):
    agent = make_agent("box", agent_type=agent_type)
    loss = agent.loss
    assert isinstance(loss, MultiTaskLoss if agent_type == "multitask" else AmagoLoss)
    assert loss.target is agent.target and loss.popart is agent.popart
    assert loss.actor is agent.actor and loss.critics is agent.critics
    keys = list(agent.state_dict())
    assert not any(k.startswith("loss.") for k in keys)
    assert {k.split(".")[0] for k in keys} >= {"target", "popart", "actor", "critics"}
    assert len(list(agent.parameters())) == len({id(p) for p in agent.parameters()})
    agent.train()
    assert agent.actor.training and not any(m.training for m in agent.target.modules())


def test_stats_reduce_is_injected_into_the_loss_popart(make_agent, random_batch):
    """A reduction that adds another 'rank's statistics gives the moments of both batches."""
    agent, ref = make_agent("discrete", popart_beta=0.3), make_agent("discrete", popart_beta=0.3)
    G = len(agent.config.all_gammas)
    y_local, y_other = torch.randn(30, G) * 4 + 2, torch.randn(50, G) * 9 - 1
    other = torch.cat([y_other.sum(0), y_other.pow(2).sum(0), torch.tensor([50.0])]).double()
    calls = []

    def reduce(stats):
        calls.append(stats.shape)
        return stats + other.to(stats.dtype)

    agent.loss.set_stats_reduce(reduce)
    agent.popart.update(y_local)
    ref.popart.update(torch.cat([y_local, y_other]))
    assert calls == [(2 * G + 1,)]
    for name in ("mu", "nu", "w", "b", "t"):
        torch.testing.assert_close(getattr(agent.popart, name), getattr(ref.popart, name), msg=name)
    agent.loss.set_stats_reduce(None)  # back to this process's batch only
    agent.train_step(random_batch(agent))
    assert len(calls) == 1


def test_one_batch_type_from_numpy_torch_and_either_scalar_layout(make_agent, random_batch):
    assert TorchBatch is Batch
    agent = make_agent("discrete")
    raw = random_batch(agent, lengths=[12, 4, 9, 12])
    b = Batch.as_tensors(raw, agent.device)
    assert (b.traj_ids, b.starts) == (None, None)
    assert Batch.as_tensors(b, agent.device).mask is b.mask  # already there: no copy
    as_np = Batch.as_tensors(
        {k: ({n: x.numpy() for n, x in v.items()} if k == "obs" else v.numpy()) for k, v in raw.items()}, agent.device
    )
    assert as_np.rews.dtype == torch.float32 and as_np.dones.dtype == torch.bool and as_np.time_idxs.dtype == torch.long
    squeezed = Batch(
        obs=b.obs,
        rl2s=b.rl2s,
        time_idxs=b.time_idxs[..., 0],
        actions=b.actions,
        rews=b.rews[..., 0],
        dones=b.dones[..., 0],
        mask=b.mask,
    )
    losses = []
    for x in (b, as_np, squeezed):
        torch.manual_seed(2)
        losses.append(amago_loss(make_agent("discrete"), x)[0])
    assert torch.equal(losses[0], losses[1]) and torch.equal(losses[0], losses[2])

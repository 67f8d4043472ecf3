import numpy as np
import pytest
import torch

from amago_fast.agent import TorchBatch, amago_loss, nstep_targets


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
    b = TorchBatch.from_batch(random_batch(agent), agent.device)
    loss, metrics = amago_loss(agent, b)
    assert torch.isfinite(loss) and all(np.isfinite(v) for v in metrics.values())
    loss.backward()
    missing = [n for n, p in agent.named_parameters()
               if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    # learned-position table rows for unused time steps aside, all online weights learn
    assert missing == []
    assert all(p.grad is None for p in agent.target.parameters())


def test_padding_does_not_change_the_loss(space, make_agent, random_batch):
    agent = make_agent(space)
    raw = random_batch(agent, lengths=[12, 7, 3, 12])
    torch.manual_seed(5)
    l1, _ = amago_loss(agent, TorchBatch.from_batch(raw, agent.device))
    for k in ("rews", "actions"):
        raw[k][1, 7:] = 1e3 * torch.randn_like(raw[k][1, 7:])
    raw["obs"]["observation"][2, 4:] = 1e3
    raw["rl2s"][2, 4:] = -1e3
    agent2 = make_agent(space)
    torch.manual_seed(5)
    l2, _ = amago_loss(agent2, TorchBatch.from_batch(raw, agent2.device))
    torch.testing.assert_close(l1, l2, rtol=1e-5, atol=1e-5)


def test_train_step_changes_weights_and_moves_targets_by_tau(make_agent, random_batch):
    agent = make_agent("discrete", tau=0.5)
    before = agent.actor.net[0].weight.detach().clone()
    tgt_before = agent.target["actor"].net[0].weight.detach().clone()
    agent.train_step(random_batch(agent))
    after = agent.actor.net[0].weight.detach()
    assert not torch.equal(before, after)
    torch.testing.assert_close(agent.target["actor"].net[0].weight, 0.5 * tgt_before + 0.5 * after)


def test_popart_update_preserves_unnormalised_outputs(make_agent):
    agent = make_agent("discrete", popart_beta=0.3)
    s = torch.randn(5, 32)
    with torch.no_grad():
        before = agent.critics(s) * agent.popart.sigma[:, None] + agent.popart.mu[:, None]
        agent.popart.update(torch.randn(40, agent.popart.mu.shape[0]) * 7 + 3, agent.critics.out, agent.critics.out_per_gamma)
        after = agent.critics(s) * agent.popart.sigma[:, None] + agent.popart.mu[:, None]
    assert agent.popart.mu.abs().min() > 0.1
    torch.testing.assert_close(before, after, rtol=1e-4, atol=1e-4)


def test_continuous_popart_preserves_outputs(make_agent):
    agent = make_agent("box", popart_beta=0.3)
    s, a = torch.randn(5, 32), torch.rand(5, 1, 2)
    with torch.no_grad():
        before = agent.popart.denormalize(agent.critics(s, a))
        agent.popart.update(torch.randn(40, 7) * 5 - 2, agent.critics.out, agent.critics.out_per_gamma)
        after = agent.popart.denormalize(agent.critics(s, a))
    torch.testing.assert_close(before, after, rtol=1e-4, atol=1e-4)


def test_critic_diagonal_evaluates_each_gamma_at_its_action(make_agent):
    agent = make_agent("box")
    s = torch.randn(3, 32)
    a = torch.rand(3, 7, 2)
    q = agent.critics(s, a)  # (3, C, G)
    for g in range(7):
        torch.testing.assert_close(q[:, :, g], agent.critics(s, a[:, g : g + 1])[:, :, g])


def test_short_training_fits_a_constant_reward(make_agent, random_batch):
    # critics must regress towards r / (1 - gamma) for a never-ending constant reward
    agent = make_agent("discrete", lr=3e-3, gammas=[0.5], policy_gamma=0.75, popart=False, tau=0.1)
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

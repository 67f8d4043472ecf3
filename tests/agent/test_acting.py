import numpy as np
import pytest
import torch

from amago_fast.agent import AgentConfig


def _params(dist):
    return dist.mean if dist.kind == "tanh_gaussian" else dist.logits


@pytest.mark.parametrize(
    "traj_encoder,pos_emb,window",
    [
        ("transformer", "fixed", 16),
        ("transformer", "rotary", 4),
        ("transformer", "learned", 4),
        ("gru", "fixed", 16),
    ],
    ids=["fixed", "rotary-ring", "learned-ring", "gru"],
)
def test_get_actions_equals_full_forward_with_independent_resets(make_agent, space, traj_encoder, pos_emb, window):
    agent = make_agent(space, traj_encoder=traj_encoder, pos_emb=pos_emb, max_seq_len=window, dropout=0.2)
    agent.train()  # acting must switch dropout off by itself
    N, T, A = 3, 14, agent.action_dim
    g = np.random.default_rng(0)
    obs = g.normal(size=(N, T, 3)).astype(np.float32)
    rl2s = g.normal(size=(N, T, 1 + A)).astype(np.float32)
    state = agent.init_state(N)
    start, tidx = np.zeros(N, int), np.zeros(N, int)
    for t in range(T):
        if t:
            done = g.random(N) < 0.15
            if done.any():
                agent.reset_state(state, np.flatnonzero(done))
                start[done], tidx[done] = t, 0
        raw, state, dist = agent.get_actions(
            {"observation": obs[:, t]}, rl2s[:, t], tidx, state, sample=False, return_dist=True
        )
        assert agent.training
        agent.eval()
        with torch.no_grad():
            for n in range(N):
                sl = slice(start[n], t + 1)
                s = agent.states(
                    {"observation": torch.tensor(obs[n : n + 1, sl])},
                    torch.tensor(rl2s[n : n + 1, sl]),
                    torch.arange(t + 1 - start[n])[None],
                )
                ref = _params(agent.actor(s[:, -1]))[0, -1]
                torch.testing.assert_close(_params(dist)[n, -1], ref, atol=2e-5, rtol=1e-5)
        agent.train()
        tidx += 1
    if agent.discrete:
        assert raw.dtype == np.int64 and raw.shape == (N,) and ((0 <= raw) & (raw < A)).all()
    else:
        assert raw.shape == (N, A)


def test_sampled_actions_are_valid(make_agent, space):
    agent = make_agent(space)
    state = agent.init_state(64)
    raw, _ = agent.get_actions(
        {"observation": np.zeros((64, 3), np.float32)}, np.zeros((64, 1 + agent.action_dim)), np.zeros(64), state
    )
    if space == "box":
        assert np.all(np.abs(raw) <= 1.0)
    elif space == "multibinary":
        assert set(np.unique(raw)) <= {0, 1}
    else:
        assert len(np.unique(raw)) > 1  # an untrained policy samples several actions


def test_bad_inputs_raise_clear_errors(make_agent):
    agent = make_agent("discrete")
    state = agent.init_state(2)
    with pytest.raises(ValueError, match="rl2s"):
        agent.get_actions({"observation": np.zeros((2, 3))}, np.zeros((2, 9)), np.zeros(2), state)
    with pytest.raises(ValueError, match="missing keys"):
        agent.get_actions({"pixels": np.zeros((2, 3))}, np.zeros((2, 4)), np.zeros(2), state)
    with pytest.raises(ValueError, match="state holds 2 envs"):
        agent.get_actions({"observation": np.zeros((3, 3))}, np.zeros((3, 4)), np.zeros(3), state)
    with pytest.raises(ValueError, match="pos_emb"):
        AgentConfig(pos_emb="alibi")
    with pytest.raises(ValueError, match="redq_subset"):
        AgentConfig(num_critics=2, redq_subset=3)
    with pytest.raises(ValueError, match="head_layers"):
        AgentConfig(head_layers=-1)
    box = make_agent("box")
    with pytest.raises(ValueError, match="head_layers"):  # the action-input critic needs a hidden layer
        type(box)(box.obs_space, box.action_space, AgentConfig(head_layers=0))
    with pytest.raises(TypeError, match="obs_space"):
        import gymnasium as gym

        from amago_fast.agent import Agent

        Agent(gym.spaces.Box(0, 1, (3,)), gym.spaces.Discrete(2))


def test_acting_cache_is_bf16_on_cuda_so_decode_reaches_triton(make_agent):
    # On CPU the cache stays fp32; a CUDA Transformer agent gets bf16, the dtype autocast
    # hands the attention, which is what the ops' auto dispatch sends to Triton.
    from amago_fast.ops import _checks

    agent = make_agent("discrete")
    assert agent.init_state(2).k.dtype == torch.float32
    agent.device = torch.device("cuda")  # only the dtype decision is exercised here
    try:
        dt = agent.acting_cache_dtype()
    finally:
        agent.device = torch.device("cpu")
    assert dt == torch.bfloat16
    if _checks.triton_available():
        assert _checks.choose_backend("auto", torch.device("cuda"), 16, 0.0, dt) == "triton"
    assert _checks.choose_backend("auto", torch.device("cuda"), 16, 0.0, torch.float32) == "torch"


@pytest.mark.gpu
def test_cuda_acting_uses_triton_decode(monkeypatch):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    import gymnasium as gym

    import amago_fast.ops._triton_ops as tops
    from amago_fast.agent import Agent

    calls = []
    real = tops.triton_decode
    monkeypatch.setattr(tops, "triton_decode", lambda *a, **k: calls.append(1) or real(*a, **k))
    obs_space = gym.spaces.Dict({"observation": gym.spaces.Box(-1, 1, (3,), np.float32)})
    cfg = AgentConfig(
        d_model=64,
        n_heads=2,
        n_layers=2,
        d_ff=64,
        max_seq_len=16,
        tstep_dim=16,
        tstep_hidden=32,
        head_hidden=32,
        dropout=0.0,
    )
    agent = Agent(obs_space, gym.spaces.Discrete(3), cfg, device="cuda")
    state = agent.init_state(3)
    obs = {"observation": np.zeros((3, 3), np.float32)}
    agent.get_actions(obs, np.zeros((3, 4), np.float32), np.zeros(3, np.int64), state)
    assert calls, "acting on CUDA did not reach the Triton decode kernel"


def test_precision_option_selects_the_encoders_autocast(make_agent):
    assert not isinstance(make_agent().autocast(), torch.autocast)  # auto on CPU: fp32
    assert not isinstance(make_agent(precision="fp32").autocast(), torch.autocast)
    bf = make_agent(precision="bf16")
    ctx = bf.autocast()
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        AgentConfig(precision="fp16")


def test_bf16_on_cpu_trains_and_stays_close_to_fp32(make_agent, random_batch):
    """precision="bf16" on CPU: the update runs, its loss is finite and near the fp32 one
    (same weights, same batch), and acting still works with the fp32 cache."""
    a32, a16 = make_agent(), make_agent(precision="bf16")
    b = random_batch(a32)
    torch.manual_seed(1)
    m32 = a32.train_step(b)
    torch.manual_seed(1)
    m16 = a16.train_step(b)
    assert np.isfinite(m16["train/loss"]) and m16["train/skipped_nonfinite"] == 0.0
    assert abs(m16["train/loss"] - m32["train/loss"]) < 0.05 * abs(m32["train/loss"]) + 1e-3
    state = a16.init_state(2)
    obs = {"observation": np.zeros((2, 3), np.float32)}
    acts, _ = a16.get_actions(obs, np.zeros((2, 1 + a16.action_dim), np.float32), np.zeros(2, np.int64), state)
    assert acts.shape == (2,)

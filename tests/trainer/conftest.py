import pytest

from amago_fast.agent import AgentConfig
from amago_fast.trainer import TrainerConfig


def tiny(**kw):
    base = dict(
        env="tmaze",
        env_args={"horizon": 4},
        num_envs=2,
        total_steps=160,
        collect_steps=8,
        grad_steps_per_round=2,
        learning_starts=32,
        batch_size=4,
        eval_every=80,
        eval_episodes=4,
        eval_envs=2,
        checkpoint_every=80,
        progress=False,
        seed=3,
    )
    base.update(kw)
    return TrainerConfig(**base)


TINY_AGENT = dict(
    d_model=16, n_heads=2, n_layers=1, d_ff=32, tstep_dim=8, tstep_hidden=16, head_hidden=16, dropout=0.1, warmup=5
)


@pytest.fixture
def tiny_configs():
    return lambda **kw: (tiny(**kw), AgentConfig(**TINY_AGENT))

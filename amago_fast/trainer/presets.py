"""Learning presets for the CPU learning targets (docs/agent.md), tuned for a 2-core CPU.

Each preset is (TrainerConfig overrides, AgentConfig overrides). Used by
benchmarks/learning.py and the slow learning tests; documented in docs/agent.md.
"""

from __future__ import annotations

from typing import Any

CPU_AGENT: dict[str, Any] = dict(
    d_model=64,
    n_heads=4,
    n_layers=2,
    d_ff=256,
    tstep_dim=32,
    tstep_hidden=64,
    head_hidden=64,
    lr=3e-4,
    warmup=200,
    dropout=0.0,
    # nn.Linear's smaller critic init: at this lr/size it solved T-Maze H20 (CLI default run)
    # at 12-16k env steps on 3 seeds, AMAGO's EinMix init at 16k-30k+ on 4 (docs/agent.md)
    critic_init="linear",
)

PRESETS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # target: eval success >= 0.95 within 5 minutes
    "tmaze20": (
        dict(
            env="tmaze",
            env_args={"horizon": 20},
            num_envs=8,
            total_steps=30_000,
            collect_steps=16,
            grad_steps_per_round=16,
            learning_starts=1_000,
            batch_size=24,
            eval_every=2_000,
            eval_episodes=32,
            eps_anneal_steps=10_000,
            checkpoint_every=0,
        ),
        dict(CPU_AGENT),
    ),
    # target: eval success >= 0.95 within 30 minutes
    "tmaze100": (
        # many envs: the first correct turn at the junction is a rare exploration event
        # (~1e-3 per episode), so episodes per wall second matter more than grad steps
        dict(
            env="tmaze",
            env_args={"horizon": 100},
            num_envs=32,
            total_steps=1_000_000,
            collect_steps=32,
            grad_steps_per_round=24,
            learning_starts=8_000,
            batch_size=16,
            eval_every=16_384,
            eval_episodes=32,
            eps_anneal_steps=100_000,
            eps_end=0.01,
            checkpoint_every=0,
        ),
        dict(CPU_AGENT),
    ),
    # target: mean return >= 95% of Thompson sampling's within 30 minutes
    "bandit5x100": (
        dict(
            env="bandit",
            env_args={"arms": 5, "pulls": 100},
            num_envs=8,
            total_steps=400_000,
            collect_steps=25,
            grad_steps_per_round=10,
            learning_starts=4_000,
            batch_size=16,
            eval_every=10_000,
            eval_episodes=64,
            eval_sample=True,
            eps_anneal_steps=50_000,
            checkpoint_every=0,
        ),
        dict(CPU_AGENT),
    ),
}

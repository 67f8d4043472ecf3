"""--mode both / learner: one metrics line per round of data or updates, not per idle loop."""

from __future__ import annotations

from amago_fast.distributed.learner import AsyncLearner, IntervalLogger


class _Sink:
    def __init__(self):
        self.records, self.closed = [], False

    def log(self, record):
        self.records.append(record)

    def close(self):
        self.closed = True


def test_idle_learner_loops_are_not_logged():
    sink = _Sink()
    log = IntervalLogger(sink, every_env_steps=128)
    for i in range(805):  # actors deliver 1,008 env steps in 805 idle loops (the run)
        log.log({"env_steps": i * 1008 // 805, "grad_steps": 0, "wall_s": i * 0.01})
    steps = [r["env_steps"] for r in sink.records]
    assert len(steps) == 8  # 0, then every 128 env steps: 1,008 / 128 -> 7 more lines
    assert all(b - a >= 128 for a, b in zip(steps, steps[1:]))
    log.log({"env_steps": 1008, "grad_steps": 16, "train/critic_loss": 0.1})  # updates: always logged
    log.log({"env_steps": 1008, "grad_steps": 16, "eval/return_mean": 1.0})  # evaluations too
    assert len(sink.records) == 10
    log.close()
    assert sink.closed


def test_async_learner_logs_through_the_interval_logger(tmp_path):
    from amago_fast.agent import AgentConfig
    from amago_fast.distributed.actors import AsyncConfig
    from amago_fast.trainer import TrainerConfig

    cfg = TrainerConfig(env="tmaze", env_args={"horizon": 3}, num_envs=2, collect_steps=8, progress=False)
    learner = AsyncLearner(
        tmp_path / "run",
        cfg,
        AgentConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, tstep_dim=8, tstep_hidden=16, head_hidden=16),
        async_cfg=AsyncConfig(num_actors=0),
    )
    log = learner._make_logger()
    try:
        assert isinstance(log, IntervalLogger) and log.every == cfg.steps_per_round == 16
    finally:
        log.close()
        learner.close()

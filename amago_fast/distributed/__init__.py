"""Scaling past one process: DDP learners launched by torchrun, asynchronous actors.

- ddp: process group from torchrun env vars (NCCL on CUDA, gloo on CPU), DDPLearner.
- trainer: DistributedTrainer (per-rank envs and replay shards, rank-0 atomic checkpoints,
  resume with any number of ranks).
- spool / actors: actor processes that write finished trajectories atomically into a
  spool directory, and the learner that ingests them (`amago-fast train --mode ...`).
"""

from .ddp import DDPLearner, DistContext, init_distributed, launched_by_torchrun, rank_seed, shutdown_distributed

__all__ = ["DDPLearner", "DistContext", "init_distributed", "launched_by_torchrun", "rank_seed", "shutdown_distributed"]

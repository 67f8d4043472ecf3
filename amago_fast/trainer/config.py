"""TrainerConfig: the collect / learn / evaluate / checkpoint schedule."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional


@dataclass
class TrainerConfig:
    """One training run. Steps count env steps summed over all parallel envs."""

    env: str = "tmaze"
    """Env name for amago_fast.envs.make_env ("tmaze", "bandit", "gym:<id>", ...)."""
    env_args: dict = field(default_factory=dict)
    """Keyword arguments of the env (e.g. {"horizon": 20})."""
    env_modules: list = field(default_factory=list)
    """Python modules imported before the env is built, so that they register custom envs
    (register_env or gymnasium.register), e.g. ["mypkg.envs"]."""
    num_envs: int = 8
    """Parallel training envs."""
    vectorization: str = "sync"
    """"sync" (one process) or "async" (a subprocess per env)."""
    total_steps: int = 20_000
    """Env steps to train for."""
    collect_steps: int = 16
    """Steps per env between learning phases (one round collects num_envs * this)."""
    grad_steps_per_round: int = 16
    """Gradient updates after each collection round."""
    learning_starts: int = 1_000
    """Env steps collected before the first update."""
    batch_size: int = 24
    """Windows per gradient step."""
    seq_len: Optional[int] = None
    """Window length L in transitions (None: agent max_seq_len - 1)."""
    context_from_env: bool = True
    """Size the agent's context to the env's episode limit when it has one (up to context_cap)."""
    context_cap: int = 128
    """Largest context (tokens) context_from_env picks; longer episodes train on sliding
    windows of this many tokens, as AMAGO's gym examples do (128). 0: no cap, whole episodes."""
    padded_sampling: str = "none"
    """Window placement mode of ReplayBuffer.sample (AMAGO's padded_sampling)."""
    relabel: str = "none"
    """Hindsight relabeling of sampled trajectories: "none", "some" or "all" (multi-goal envs)."""
    buffer_capacity: int = 500_000
    """Replay capacity in transitions (FIFO over whole trajectories)."""
    offline_data: str = ""
    """Offline dataset directory (an amago_fast replay snapshot, an AMAGO buffer or a Minari
    dataset, read locally): its trajectories are kept in the replay buffer's protected
    partition, never evicted, next to what the envs collect (offline-to-online)."""
    offline_steps: int = 0
    """Gradient steps on the offline data before any env step (offline RL). With
    total_steps=0 the run never collects: train offline, evaluate, checkpoint."""
    eps_start: float = 1.0
    """Exploration ceiling at the start (AMAGO-style per-env epsilon)."""
    eps_end: float = 0.05
    """Exploration floor."""
    eps_anneal_steps: int = 10_000
    """Env steps over which the exploration ceiling anneals."""
    eps_floor: bool = False
    """Keep every env's epsilon at or above eps_end (eps_end + u * (ceiling - eps_end)) instead
    of AMAGO's u * ceiling, u ~ U[0, 1) per env and episode."""
    eval_every: int = 2_000
    """Env steps between evaluations (0: only at the end)."""
    eval_episodes: int = 32
    """Episodes per evaluation (fresh envs, no exploration, policy mode)."""
    eval_envs: int = 8
    """Parallel envs during evaluation."""
    eval_sample: bool = False
    """Evaluate with sampled actions (True) or the policy's mode (False)."""
    eval_max_steps: int = 100_000
    """Safety cap on steps per env in one evaluation."""
    checkpoint_every: int = 10_000
    """Env steps between checkpoints; 0 disables these (one is still written after the first
    update, every checkpoint_interval_s, at the end and on SIGINT/SIGTERM)."""
    checkpoint_interval_s: float = 300.0
    """Wall seconds between checkpoints (0 disables); each cuts the envs' trajectories, so
    set 0 when a run must be bit-identical to another."""
    keep_checkpoints: int = 2
    """Most recent checkpoints kept on disk."""
    nonfinite: str = "raise"
    """NaN/inf in an env's observations or rewards: "raise" (NonFiniteError naming the env
    copy and field) or "drop" (drop the trajectory holding it, counted in data/dropped_*)."""
    seed: int = 0
    """Seeds torch, numpy, the envs, exploration and the replay sampler."""
    device: str = "cpu"
    """"cpu" or "cuda"."""
    torch_threads: Optional[int] = None
    """torch.set_num_threads for the run (None: leave torch's default)."""
    progress: bool = True
    """Show a tqdm progress bar."""
    tensorboard: bool = False
    """Also log to TensorBoard (needs tensorboard installed)."""
    wandb: bool = False
    """Also log to Weights & Biases (needs wandb installed)."""
    wandb_project: Optional[str] = None
    """W&B project name."""

    def __post_init__(self) -> None:
        for name in ("num_envs", "collect_steps", "batch_size", "eval_episodes", "eval_envs", "keep_checkpoints"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "total_steps",
            "grad_steps_per_round",
            "learning_starts",
            "eval_every",
            "checkpoint_every",
            "offline_steps",
            "context_cap",
        ):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.nonfinite not in ("raise", "drop"):
            raise ValueError(f"nonfinite must be 'raise' or 'drop', got {self.nonfinite!r}")
        if not float(self.checkpoint_interval_s) >= 0:
            raise ValueError(f"checkpoint_interval_s must be >= 0, got {self.checkpoint_interval_s}")
        if self.vectorization not in ("sync", "async"):
            raise ValueError(f"vectorization must be 'sync' or 'async', got {self.vectorization!r}")
        if self.seq_len is not None and self.seq_len < 1:
            raise ValueError(f"seq_len must be >= 1 or None, got {self.seq_len}")
        if self.offline_steps and not self.offline_data:
            raise ValueError("offline_steps needs offline_data (the dataset directory to train on)")
        if not isinstance(self.env_args, dict):
            raise TypeError(f"env_args must be a dict, got {type(self.env_args).__name__}")

    @property
    def steps_per_round(self) -> int:
        return self.num_envs * self.collect_steps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainerConfig":
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainerConfig fields: {sorted(unknown)}")
        return cls(**d)

"""AgentConfig: every knob of the networks and the AMAGO update."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..nets.heads import CRITIC_INITS

DPG_CRITICS = ("current", "amago")


@dataclass
class AgentConfig:
    """Networks and learning update. Defaults are AMAGO v3's (`amago.agent.Agent`,
    `TformerTrajEncoder`, `FFTstepEncoder`, `Actor`, `NCritics`, `Experiment`); the
    table "Deviations from AMAGO" in docs/agent.md lists what differs and why. Shrink
    d_model/n_layers for CPU."""

    agent_type: str = "agent"
    """The update: "agent" (AMAGO's Agent) or "multitask" (AMAGO-2's MultiTaskAgent: value
    classification over bins, actions as critic inputs, for tasks with different reward
    scales; build its config with `AgentConfig.multitask()` for its defaults)."""
    d_model: int = 256
    """Width of the trajectory encoder (and of state embeddings s_t)."""
    n_heads: int = 8
    """Attention heads (d_model / n_heads must be even, for rotary)."""
    n_layers: int = 3
    """Transformer blocks (or GRU layers)."""
    d_ff: int = 1024
    """Feed-forward width inside each block."""
    dropout: float = 0.05
    """Dropout on the input embedding and on each block's feed-forward output (AMAGO's
    dropout_emb and dropout_ff; runs saved before 0.3 also dropped the attention output
    and the FF hidden layer)."""
    pos_emb: str = "fixed"
    """Position embedding of time_idxs: "fixed" (sinusoidal), "learned" or "rotary"."""
    traj_encoder: str = "transformer"
    """Trajectory encoder: "transformer" or "gru"."""
    max_seq_len: int = 128
    """Context length: training window L and the KV-cache ring size when acting."""
    max_time: int = 1024
    """Rows of the learned position table (time_idxs beyond reuse the last row)."""
    sigma_reparam: bool = True
    """Sigma-reparameterised linears in the Transformer."""
    head_scaling: bool = True
    """A learned scale per attention head on its output (NormFormer, as AMAGO)."""
    qkv_bias: bool = False
    """A bias in the query/key/value projection (AMAGO has none)."""
    precision: str = "auto"
    """Matmul precision of the timestep and trajectory encoders (heads, losses and PopArt
    stay fp32): "auto" = bf16 autocast on CUDA, fp32 on CPU; "bf16" = bf16 autocast on
    any device (fast on CPUs with AMX or AVX-512 BF16); "fp32" = no autocast anywhere."""
    tstep_dim: int = 256
    """Width of the timestep encoder's output token."""
    tstep_hidden: int = 512
    """Hidden width of the timestep encoder MLP."""
    tstep_layers: int = 2
    """Hidden layers of the timestep encoder MLP (AMAGO's FFTstepEncoder: 2)."""
    tstep_style: str = "amago"
    """"amago": AMAGO's FFTstepEncoder (moving-average input normalisation, Linear out,
    LayerNorm); "compact": amago_fast < 0.3's (no input normalisation, symlog reward,
    LeakyReLU before the LayerNorm)."""
    head_hidden: int = 256
    """Hidden width of actor and critic MLPs."""
    head_layers: int = 2
    """Hidden layers of actor and critic MLPs."""
    critic_init: str = "amago"
    """Critic ensemble weight init: "amago" (AMAGO's EinMix: weights U(+-sqrt(3/fan_in)),
    variance 1/fan_in) or "linear" (nn.Linear's U(+-1/sqrt(fan_in)), a third of the
    variance; the CPU presets use it, see docs/agent.md). Biases U(+-1/sqrt(fan_in)) in both."""
    gammas: list = field(default_factory=lambda: [0.1, 0.9, 0.95, 0.97, 0.99, 0.995])
    """Extra discount factors learned alongside the policy's (multi-gamma)."""
    policy_gamma: float = 0.999
    """Discount factor the acting policy uses (appended last to gammas)."""
    num_critics: int = 4
    """Critic ensemble size C."""
    redq_subset: int = 2
    """Critics drawn at random for each TD target (REDQ): per (step, gamma), with
    replacement, as AMAGO's num_critics_td."""
    reward_multiplier: float = 10.0
    """Rewards are scaled by this in TD targets (AMAGO: for numerical stability of the
    value normalisation; returns near 1 become near 10)."""
    n_step: int = 1
    """n-step TD targets (truncated at episode ends and window ends)."""
    popart: bool = True
    """Normalise value targets per gamma with PopArt."""
    popart_beta: float = 5e-4
    """PopArt statistics step size (debiased: beta_t = beta / (1 - (1 - beta)^t))."""
    online_coeff: float = 1.0
    """Weight of the DPG term -min_C Q(s, a~pi) in the actor loss."""
    offline_coeff: float = 0.1
    """Weight of the filtered behaviour-cloning term -1[A>0] log pi(a|s)."""
    critic_loss_weight: float = 10.0
    """Critic loss weight in the total loss."""
    tau: float = 0.003
    """EMA rate of the target networks."""
    lr: float = 1e-4
    """AdamW learning rate."""
    warmup: int = 500
    """Linear learning-rate warmup, in gradient steps."""
    warmup_from_zero: bool = True
    """True: AMAGO's warmup, lr x k / warmup at update k, so update 0 has lr 0 and changes
    nothing; False: lr x (k + 1) / warmup (the two differ by lr / warmup per warmup step)."""
    dpg_critics: str = "amago"
    """Critic weights behind the DPG term and the V(s) of the advantage filter: "amago"
    (AMAGO v3.3.0's `maximized_critics`: a copy refreshed before each optimizer step, so one
    step old when read, whose gradients are never zeroed: they accumulate over updates,
    count in the clip norm and are scaled by each clip) or "current" (this update's
    critics, detached; 1.05-1.12x the updates/s at AMAGO's default size on CPU, and 1.07x
    the env steps to solve T-Maze H20 over 10 seeds, docs/agent.md)."""
    grad_clip: float = 1.0
    """Global gradient-norm clip."""
    weight_decay: float = 1e-3
    """AdamW weight decay."""
    value_bins: int = 128
    """multitask: bins of the value distribution."""
    value_min: float = -1e5
    """multitask: lowest value the bins cover (in reward_multiplier units)."""
    value_max: float = 1e5
    """multitask: highest value the bins cover (in reward_multiplier units)."""
    value_symlog: bool = True
    """multitask: space the bins evenly in symlog(value) (Dreamer-V3) instead of value."""
    value_samples: int = 1
    """Policy actions sampled per state for V(s) and the DPG term, continuous /
    multibinary actions (AMAGO's num_actions_for_value_in_actor_loss); discrete actions
    use the exact expectation."""

    @classmethod
    def multitask(cls, **overrides: Any) -> "AgentConfig":
        """AMAGO-2's MultiTaskAgent defaults: filtered BC only (online_coeff 0, offline_coeff
        1; the DPG term scales with Q), and 3 policy samples per state for V(s)."""
        kw = dict(agent_type="multitask", online_coeff=0.0, offline_coeff=1.0, value_samples=3)
        kw.update(overrides)
        return cls(**kw)

    def __post_init__(self) -> None:
        if self.agent_type not in ("agent", "multitask"):
            raise ValueError(f"agent_type must be 'agent' or 'multitask', got {self.agent_type!r}")
        if self.value_bins < 2 or not self.value_min < self.value_max:
            raise ValueError(
                f"need value_bins >= 2 and value_min < value_max, got {self.value_bins}, "
                f"{self.value_min}, {self.value_max}"
            )
        if self.critic_init not in CRITIC_INITS:
            raise ValueError(f"critic_init must be one of {CRITIC_INITS}, got {self.critic_init!r}")
        if self.tstep_style not in ("amago", "compact"):
            raise ValueError(f"tstep_style must be 'amago' or 'compact', got {self.tstep_style!r}")
        if isinstance(self.tstep_layers, bool) or not isinstance(self.tstep_layers, int) or self.tstep_layers < 1:
            raise ValueError(f"tstep_layers must be an int >= 1, got {self.tstep_layers!r}")
        if self.pos_emb not in ("fixed", "learned", "rotary"):
            raise ValueError(f"pos_emb must be 'fixed', 'learned' or 'rotary', got {self.pos_emb!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', got {self.precision!r}")
        if self.traj_encoder not in ("transformer", "gru"):
            raise ValueError(f"traj_encoder must be 'transformer' or 'gru', got {self.traj_encoder!r}")
        if not 1 <= self.redq_subset <= self.num_critics:
            raise ValueError(f"redq_subset must be in [1, num_critics={self.num_critics}], got {self.redq_subset}")
        if self.n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {self.n_step}")
        if self.dpg_critics not in DPG_CRITICS:
            raise ValueError(f"dpg_critics must be one of {DPG_CRITICS}, got {self.dpg_critics!r}")
        if self.head_layers < 0:
            raise ValueError(f"head_layers must be >= 0, got {self.head_layers}")
        if self.value_samples < 1:
            raise ValueError(f"value_samples must be >= 1, got {self.value_samples}")
        if self.max_seq_len < 1:
            raise ValueError(f"max_seq_len must be >= 1, got {self.max_seq_len}")
        for g in [*self.gammas, self.policy_gamma]:
            if not 0.0 <= g < 1.0:
                raise ValueError(f"gammas must lie in [0, 1), got {g}")

    @property
    def all_gammas(self) -> list:
        """Gammas in head order; the policy's is last."""
        return [*self.gammas, self.policy_gamma]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AgentConfig":
        """A config from (a subset of) its fields; missing fields take today's defaults."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown AgentConfig fields: {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def from_saved(cls, d: dict[str, Any]) -> "AgentConfig":
        """The config of a saved run (checkpoint, run dir): fields it predates take the
        value that reproduces the network it was saved with (`SAVED_BEFORE_FIELD`), so old
        checkpoints load into the architecture that wrote them."""
        return cls.from_dict({**{k: v for k, v in SAVED_BEFORE_FIELD.items() if k not in d}, **d})


# What a run saved before a field existed used: the behaviour of amago_fast at the time.
SAVED_BEFORE_FIELD: dict[str, Any] = {
    "head_scaling": False,
    "qkv_bias": True,
    "tstep_layers": 1,
    "tstep_style": "compact",
    "dpg_critics": "current",
    "warmup_from_zero": False,
}

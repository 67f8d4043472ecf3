"""One side of benchmarks/vs_amago.py: a single process running AMAGO or amago_fast.

    python benchmarks/vs_amago_worker.py {amago,fast} SETTINGS_JSON OUT_JSONL

SETTINGS_JSON is a `Settings` dict (written by vs_amago.py). The worker sets its torch
threads to 1 (its CPU affinity is set by the parent), runs until its budget, the success
threshold or max_env_steps, writes one JSON line per evaluation (or per throughput
report) to OUT_JSONL, flushed as it goes, and a last line {"final": ...}.

AMAGO runs its own `Experiment` loop (`learn()`), with hooks on `evaluate_val`,
`collect_new_training_data` and `train_step` that only count and time; a hook raises
`_Stop` once the budget or the threshold is reached. Both systems act in AMAGO's own env
classes (TMazeAltPassive, RoomKeyDoor): amago_fast gets them through `register_env`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Optional

os.environ.setdefault("WANDB_MODE", "disabled")


@dataclass
class Settings:
    """Everything both systems must agree on. Steps count env steps over all envs unless
    named per_env."""

    task: str = "tmaze"
    """"tmaze" (TMazeAltPassive), "dkd" (dark RoomKeyDoor) or "throughput" (random data)."""
    horizon: int = 20
    """T-Maze corridor length."""
    room_size: int = 5
    """Dark key-door room size."""
    episode_length: int = 20
    """Dark key-door inner episode length."""
    meta_horizon: int = 100
    """Dark key-door trial length (one gymnasium episode)."""
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 256
    tstep_hidden: int = 128
    tstep_dim: int = 64
    tstep_layers: int = 2
    """Hidden layers of both timestep encoders (AMAGO's FFTstepEncoder default: 2)."""
    tstep_input_norm: bool = True
    """AMAGO's InputNorm in both (amago_fast: tstep_style "amago"; False: "compact", whose
    symlog reward and output activation AMAGO's FFTstepEncoder does not have)."""
    head_hidden: int = 64
    max_seq_len: int = 22
    """Context in tokens (observations): AMAGO's max_seq_len; amago_fast's max_seq_len,
    training windows of max_seq_len - 1 transitions."""
    batch_size: int = 24
    parallel_envs: int = 8
    steps_per_epoch_per_env: int = 64
    """AMAGO's train_timesteps_per_epoch; amago_fast's collect_steps."""
    updates_per_epoch: int = 64
    """AMAGO's train_batches_per_epoch; amago_fast's grad_steps_per_round."""
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_anneal_per_env: int = 2_000
    """AMAGO EpsilonGreedy steps_anneal (steps of one actor); amago_fast gets x parallel_envs."""
    lr: float = 1e-4
    warmup: int = 500
    reward_multiplier: float = 10.0
    gamma: float = 0.999
    dropout: float = 0.05
    eval_steps_per_env: int = 84
    """AMAGO's val_timesteps_per_epoch; amago_fast evaluates the same number of episodes."""
    threshold: float = 0.999
    """Mean eval return at which a run counts as solved and stops."""
    budget_s: float = 300.0
    """Wall-clock budget of the whole worker (stops by itself)."""
    max_env_steps: int = 10_000_000
    seed: int = 0
    obs_dim: int = 16
    """throughput only: random observation width."""
    num_actions: int = 4
    """throughput only: Discrete action count."""
    dpg_critics: str = "amago"
    """amago_fast only: AgentConfig.dpg_critics. "amago" (the default of both) is AMAGO's
    maximized_critics copy, as AMAGO itself always runs; "current" reads the live critics."""
    warmup_from_zero: bool = True
    """amago_fast only: AgentConfig.warmup_from_zero. True (the default of both) is AMAGO's
    lr x k / warmup; False starts at lr / warmup."""
    nudge_seed: int = -1
    """>= 0: right after the agent is built, move every parameter by float32 rounding
    (p += p * 2^-24 * N(0, 1), noise seeded by nudge_seed), then train as usual. The same
    seed then gives a run that differs from the unnudged one by rounding only: how far
    such runs end apart is how far "the same seed" can pin a result (training is chaotic)."""
    repeatable: bool = True
    """AMAGO side: as shipped, AMAGO does not repeat a run for a seed. Its exploration
    wrapper draws from an unseeded generator at every reset, and its replay samples with
    the seeded `random` from a file list in set order (names hold uuid4 and time, sets
    follow per-process string hashing). True seeds those draws (from seed, wrapper and
    reset count) and lists the files in the order they were saved, so one seed is one run,
    as it already is for amago_fast; what is drawn, and from which distribution, is
    unchanged. False: AMAGO exactly as shipped."""
    precision: str = "fp32"
    """throughput only: "fp32", or "bf16" autocast on both sides (AMAGO: around its whole
    forward, as accelerate's mixed_precision="bf16" does; amago_fast: AgentConfig
    precision="bf16", its encoders)."""

    @property
    def episode_steps(self) -> int:
        return self.horizon + 1 if self.task == "tmaze" else self.meta_horizon

    @property
    def eval_episodes(self) -> int:
        return self.parallel_envs * max(1, self.eval_steps_per_env // self.episode_steps)

    def check(self) -> Settings:
        if self.task not in ("tmaze", "dkd", "throughput"):
            raise ValueError(f"task must be 'tmaze', 'dkd' or 'throughput', got {self.task!r}")
        for name in (
            "horizon",
            "room_size",
            "episode_length",
            "meta_horizon",
            "d_model",
            "n_heads",
            "n_layers",
            "d_ff",
            "max_seq_len",
            "batch_size",
            "parallel_envs",
            "steps_per_epoch_per_env",
            "updates_per_epoch",
            "eval_steps_per_env",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if self.budget_s <= 0:
            raise ValueError(f"budget_s must be > 0, got {self.budget_s}")
        if self.task != "throughput" and self.eval_steps_per_env < self.episode_steps:
            raise ValueError(
                f"eval_steps_per_env={self.eval_steps_per_env} must cover one episode ({self.episode_steps} steps)"
            )
        return self


class _Stop(Exception):
    """Raised from a hook to leave AMAGO's learn() loop."""


class _Log:
    """JSON lines, flushed and fsynced per record (a killed run keeps what it wrote)."""

    def __init__(self, path: str):
        self.f = open(path, "a")

    def write(self, rec: dict) -> None:
        self.f.write(json.dumps(rec) + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())


def _seed(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)  # RoomKeyDoor draws its rooms from `random`
    np.random.seed(seed)
    torch.manual_seed(seed)


def nudge(params, seed: int) -> None:
    """Settings.nudge_seed's perturbation of `params` (no-op for seed < 0)."""
    if seed < 0:
        return
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in params:
            p.add_(p * torch.randn(p.shape, generator=g, dtype=p.dtype) * 2.0**-24)


def weights_digest(module) -> str:
    """sha256 (first 16 hex digits) of every tensor in module.state_dict(), in key order:
    two runs end with the same weights exactly when their digests agree."""
    import hashlib

    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _saved_at(path: str) -> tuple[float, str]:
    """Sort key of one of AMAGO's trajectory files, named {env}_{uuid}_{time.time()}.{ext}:
    the time it was saved, then the name (never reached in practice: saves are serial)."""
    name = os.path.splitext(os.path.basename(path))[0]
    return float(name.rsplit("_", 1)[1]), name


def _amago_env(s: Settings):
    """AMAGO's own gymnasium env for the task (not wrapped)."""
    if s.task == "tmaze":
        from amago.envs.builtin.tmaze import TMazeAltPassive

        return TMazeAltPassive(corridor_length=s.horizon, penalty=-1.0 / s.horizon)
    from amago.envs.builtin.toy_gym import RoomKeyDoor

    return RoomKeyDoor(
        dark=True, size=s.room_size, max_episode_steps=s.episode_length, meta_rollout_horizon=s.meta_horizon
    )


# ---------------------------------------------------------------------------- AMAGO side
def _amago_parts(s: Settings):
    import amago
    from amago.nets import actor_critic, transformer
    from amago.nets.traj_encoders import TformerTrajEncoder
    from amago.nets.tstep_encoders import FFTstepEncoder

    # flash_attn is CUDA-only: AMAGO's CPU path is VanillaAttention
    traj = partial(
        TformerTrajEncoder,
        d_model=s.d_model,
        n_heads=s.n_heads,
        d_ff=s.d_ff,
        n_layers=s.n_layers,
        dropout_ff=s.dropout,
        dropout_emb=s.dropout,
        attention_type=transformer.VanillaAttention,
    )
    tstep = partial(
        FFTstepEncoder,
        n_layers=s.tstep_layers,
        d_hidden=s.tstep_hidden,
        d_output=s.tstep_dim,
        normalize_inputs=s.tstep_input_norm,
    )
    agent = partial(
        amago.agent.Agent,
        reward_multiplier=s.reward_multiplier,
        gamma=s.gamma,
        actor_type=partial(actor_critic.Actor, d_hidden=s.head_hidden),
        critic_type=partial(actor_critic.NCritics, d_hidden=s.head_hidden),
    )
    return tstep, traj, agent


def run_amago(s: Settings, log: _Log) -> dict:
    import gymnasium
    import numpy as np

    if int(gymnasium.__version__.split(".")[0]) >= 1:
        raise RuntimeError(
            f"AMAGO's env wrappers need gymnasium <= 0.29.1, this interpreter has "
            f"{gymnasium.__version__}: pass --amago-python from a venv with AMAGO's pins"
        )
    import amago
    import torch
    from amago.envs import AMAGOEnv
    from amago.envs.exploration import EpsilonGreedy
    from amago.loading import DiskTrajDataset

    tstep, traj, agent = _amago_parts(s)
    name = "TMazePassive" if s.task == "tmaze" else "DarkKeyDoor"
    make_env = lambda: AMAGOEnv(env=_amago_env(s), env_name=name)

    class Explore(EpsilonGreedy):  # AMAGO checks issubclass, so no partial
        made = 0

        def __init__(self, amago_env):
            super().__init__(amago_env, eps_start=s.eps_start, eps_end=s.eps_end, steps_anneal=s.eps_anneal_per_env)
            self.instance, self.resets = Explore.made, 0
            Explore.made += 1

        def reset(self, *args, **kwargs):
            out = super().reset(*args, **kwargs)
            if s.repeatable:  # the same draws as AMAGO's reset, from a seeded generator
                self.rng = np.random.default_rng([s.seed, self.instance, self.resets])
                self.resets += 1
                if self.randomize_eps:
                    self.global_multiplier = self.rng.random(self.batched_envs)
            return out

    class SavedOrderDataset(DiskTrajDataset):
        """DiskTrajDataset whose file list is in save order after every change to it."""

        def _order(self):
            self.all_filenames.sort(key=_saved_at)

        def _refresh_files(self):
            super()._refresh_files()
            self._order()

        def _filter(self):
            super()._filter()
            self._order()

        def delete(self, *args, **kwargs):
            super().delete(*args, **kwargs)
            self._order()

    dataset_type = SavedOrderDataset if s.repeatable else DiskTrajDataset
    tmp = tempfile.TemporaryDirectory(prefix="vs_amago_")
    exp = amago.Experiment(
        run_name=f"vs_{s.task}_{s.seed}",
        ckpt_base_dir=tmp.name,
        max_seq_len=s.max_seq_len,
        traj_save_len=s.episode_steps + 1,
        stagger_traj_file_lengths=False,
        dataset=dataset_type(dset_root=tmp.name, dset_name="vs", dset_max_size=500_000),
        tstep_encoder_type=tstep,
        traj_encoder_type=traj,
        agent_type=agent,
        make_train_env=make_env,
        make_val_env=make_env,
        parallel_actors=s.parallel_envs,
        env_mode="sync",
        exploration_wrapper_type=Explore,
        sample_actions_train=True,
        sample_actions_val=False,
        epochs=10**9,
        train_timesteps_per_epoch=s.steps_per_epoch_per_env,
        train_batches_per_epoch=s.updates_per_epoch,
        val_interval=1,
        val_timesteps_per_epoch=s.eval_steps_per_env,
        batch_size=s.batch_size,
        learning_rate=s.lr,
        lr_warmup_steps=s.warmup,
        dloader_workers=0,
        ckpt_interval=None,
        always_save_latest=False,
        log_to_wandb=False,
        verbose=False,
    )
    exp.start()
    nudge(exp.policy.parameters(), s.nudge_seed)
    st = dict(env_steps=0, updates=0, eval_s=0.0, collect_s=0.0, learn_s=0.0, learn_from=None, last=None, solved=None)
    t0 = time.perf_counter()

    def end_learn_phase():
        # AMAGO's learning phase: dataset bookkeeping, dataloader and updates, from the end
        # of a collection to the next evaluation
        if st["learn_from"] is not None:
            st["learn_s"] += time.perf_counter() - st["learn_from"]
            st["learn_from"] = None

    orig_eval, orig_collect, orig_train, orig_metrics = (
        exp.evaluate_val,
        exp.collect_new_training_data,
        exp.train_step,
        exp.policy_metrics,
    )

    def metrics(returns, specials):
        out = orig_metrics(returns, specials)
        st["last"] = out
        return out

    def evaluate_val():
        end_learn_phase()
        te = time.perf_counter()
        orig_eval()
        st["eval_s"] += time.perf_counter() - te
        ret = float(st["last"]["Average Total Return (Across All Env Names)"])
        wall = time.perf_counter() - t0
        rec = dict(
            env_steps=st["env_steps"],
            updates=st["updates"],
            wall_s=round(wall, 2),
            train_wall_s=round(wall - st["eval_s"], 2),
            eval_return=ret,
        )
        log.write(rec)
        if st["env_steps"] > 0 and ret >= s.threshold:
            st["solved"] = rec
            raise _Stop
        _check_budget()

    def _check_budget():
        if time.perf_counter() - t0 > s.budget_s or st["env_steps"] >= s.max_env_steps:
            end_learn_phase()
            raise _Stop

    def collect():
        tc = time.perf_counter()
        orig_collect()
        st["learn_from"] = time.perf_counter()
        st["collect_s"] += st["learn_from"] - tc
        st["env_steps"] += s.steps_per_epoch_per_env * s.parallel_envs

    def train_step(batch, log_step):
        out = orig_train(batch, log_step)
        st["updates"] += 1
        if st["updates"] % 16 == 0:
            _check_budget()
        return out

    exp.evaluate_val, exp.collect_new_training_data, exp.train_step = evaluate_val, collect, train_step
    exp.policy_metrics = metrics
    try:
        exp.learn()
    except _Stop:
        pass
    wall = time.perf_counter() - t0
    digest = weights_digest(exp.policy)
    del exp
    torch.cuda.empty_cache()
    tmp.cleanup()
    return dict(
        env_steps=st["env_steps"],
        updates=st["updates"],
        wall_s=round(wall, 2),
        train_wall_s=round(wall - st["eval_s"], 2),
        collect_s=round(st["collect_s"], 2),
        learn_s=round(st["learn_s"], 2),
        eval_s=round(st["eval_s"], 2),
        solved=st["solved"],
        weights=digest,
    )


def throughput_amago(s: Settings, log: _Log) -> dict:
    import amago
    import gymnasium as gym
    import numpy as np
    import torch
    from amago.loading import Batch

    tstep, traj, agent_t = _amago_parts(s)
    A, L = s.num_actions, s.max_seq_len
    obs_space = gym.spaces.Dict({"observation": gym.spaces.Box(-np.inf, np.inf, (s.obs_dim,), np.float32)})
    rl2_space = gym.spaces.Box(-np.inf, np.inf, (1 + A,), np.float32)
    agent = agent_t(
        obs_space=obs_space,
        rl2_space=rl2_space,
        action_space=gym.spaces.Discrete(A),
        max_seq_len=L,
        tstep_encoder_type=tstep,
        traj_encoder_type=traj,
    )
    opt = torch.optim.AdamW(agent.trainable_params, lr=s.lr, weight_decay=1e-3)
    sched = amago.utils.get_constant_schedule_with_warmup(optimizer=opt, num_warmup_steps=s.warmup)
    batches = [_random_arrays(s, i) for i in range(4)]
    batches = [
        Batch(
            obs={"observation": torch.from_numpy(b["obs"])},
            rl2s=torch.from_numpy(b["rl2s"]),
            rews=torch.from_numpy(b["rews"])[..., None],
            dones=torch.from_numpy(b["dones"])[..., None].float(),
            actions=torch.from_numpy(b["actions"]),
            time_idxs=torch.from_numpy(b["time_idxs"])[..., None],
        )
        for b in batches
    ]
    agent.train()
    cast = partial(torch.autocast, "cpu", dtype=torch.bfloat16) if s.precision == "bf16" else contextlib.nullcontext

    def step(i):  # Experiment.train_step without accelerate (one process, no accumulation)
        opt.zero_grad()
        with cast():
            loss = agent(batches[i % len(batches)], log_step=False)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(agent.parameters(), 1.0)
        agent.soft_sync_targets()
        opt.step()
        sched.step()

    return _time_updates(step, s, log)


# ----------------------------------------------------------------------- amago_fast side
def _fast_configs(s: Settings, env_name: str, env_args: dict):
    from amago_fast.agent import AgentConfig
    from amago_fast.trainer import TrainerConfig

    acfg = AgentConfig(
        d_model=s.d_model,
        n_heads=s.n_heads,
        n_layers=s.n_layers,
        d_ff=s.d_ff,
        tstep_hidden=s.tstep_hidden,
        tstep_dim=s.tstep_dim,
        tstep_layers=s.tstep_layers,
        tstep_style="amago" if s.tstep_input_norm else "compact",
        head_hidden=s.head_hidden,
        max_seq_len=s.max_seq_len,
        max_time=max(1024, s.max_seq_len),
        dropout=s.dropout,
        lr=s.lr,
        warmup=s.warmup,
        reward_multiplier=s.reward_multiplier,
        policy_gamma=s.gamma,
        dpg_critics=s.dpg_critics,
        warmup_from_zero=s.warmup_from_zero,
    )
    tcfg = TrainerConfig(
        env=env_name,
        env_args=env_args,
        num_envs=s.parallel_envs,
        collect_steps=s.steps_per_epoch_per_env,
        grad_steps_per_round=s.updates_per_epoch,
        learning_starts=0,
        batch_size=s.batch_size,
        seq_len=s.max_seq_len - 1,
        context_from_env=False,
        eps_start=s.eps_start,
        eps_end=s.eps_end,
        eps_anneal_steps=s.eps_anneal_per_env * s.parallel_envs,
        eval_every=s.steps_per_epoch_per_env * s.parallel_envs,
        eval_episodes=s.eval_episodes,
        eval_envs=s.parallel_envs,
        eval_sample=False,
        checkpoint_every=0,
        seed=s.seed,
        torch_threads=1,
        progress=False,
    )
    return tcfg, acfg


def run_fast(s: Settings, log: _Log) -> dict:
    from amago_fast.envs import register_env
    from amago_fast.trainer import Trainer

    if s.task == "tmaze":
        register_env("amago-tmaze", lambda horizon: _amago_env(dataclasses.replace(s, horizon=horizon)), overwrite=True)
        env_name, env_args = "amago-tmaze", {"horizon": s.horizon}
    else:
        register_env("amago-dkd", lambda: _amago_env(s), overwrite=True)
        env_name, env_args = "amago-dkd", {}
    tcfg, acfg = _fast_configs(s, env_name, env_args)
    tmp = tempfile.TemporaryDirectory(prefix="vs_fast_")
    tr = Trainer(tmp.name, tcfg, acfg)
    nudge(tr.agent.parameters(), s.nudge_seed)
    st = dict(eval_s=0.0, collect_s=0.0, learn_s=0.0)

    def timed(method, key):
        def wrapped(*a, **kw):
            te = time.perf_counter()
            out = method(*a, **kw)
            st[key] += time.perf_counter() - te
            return out

        return wrapped

    tr.evaluate = timed(tr.evaluate, "eval_s")
    tr.collect = timed(tr.collect, "collect_s")
    tr.learn = timed(tr.learn, "learn_s")
    t0 = time.perf_counter()
    solved = None
    per_round = tcfg.steps_per_round
    while time.perf_counter() - t0 < s.budget_s and tr.env_steps < s.max_env_steps:
        tr.run(total_steps=tr.env_steps + per_round)
        wall = time.perf_counter() - t0
        ret = float(tr.last_eval["return_mean"])
        rec = dict(
            env_steps=tr.env_steps,
            updates=tr.grad_steps,
            wall_s=round(wall, 2),
            train_wall_s=round(wall - st["eval_s"], 2),
            eval_return=ret,
        )
        log.write(rec)
        if ret >= s.threshold:
            solved = rec
            break
    wall = time.perf_counter() - t0
    digest = weights_digest(tr.agent)
    tr.close()
    tmp.cleanup()
    return dict(
        env_steps=tr.env_steps,
        updates=tr.grad_steps,
        wall_s=round(wall, 2),
        train_wall_s=round(wall - st["eval_s"], 2),
        collect_s=round(st["collect_s"], 2),
        learn_s=round(st["learn_s"], 2),
        eval_s=round(st["eval_s"], 2),
        solved=solved,
        weights=digest,
    )


def throughput_fast(s: Settings, log: _Log) -> dict:
    import gymnasium as gym
    import numpy as np

    from amago_fast.agent import Agent, TorchBatch

    _, acfg = _fast_configs(s, "tmaze", {})
    acfg = dataclasses.replace(acfg, precision=s.precision)
    obs_space = gym.spaces.Dict({"observation": gym.spaces.Box(-np.inf, np.inf, (s.obs_dim,), np.float32)})
    agent = Agent(obs_space, gym.spaces.Discrete(s.num_actions), acfg)
    batches = []
    for i in range(4):
        b = _random_arrays(s, i)
        b["obs"] = {"observation": b["obs"]}
        b["mask"] = np.ones(b["time_idxs"].shape, bool)
        batches.append(TorchBatch.from_batch(b, agent.device))
    return _time_updates(lambda i: agent.train_step(batches[i % len(batches)]), s, log)


# ------------------------------------------------------------------------------ shared
def _random_arrays(s: Settings, seed: int) -> dict[str, Any]:
    """One random batch, full windows (no padding): B windows of L tokens."""
    import numpy as np

    rng = np.random.default_rng(1000 + seed)
    B, L, A = s.batch_size, s.max_seq_len, s.num_actions
    act = np.eye(A, dtype=np.float32)[rng.integers(A, size=(B, L - 1))]
    rews = rng.normal(size=(B, L - 1)).astype(np.float32)
    rl2s = np.concatenate(
        [np.concatenate([np.zeros((B, 1, 1)), rews[..., None]], 1), np.concatenate([np.zeros((B, 1, A)), act], 1)], -1
    ).astype(np.float32)
    dones = np.zeros((B, L - 1), bool)
    dones[:, -1] = rng.random(B) < 0.3
    return dict(
        obs=rng.normal(size=(B, L, s.obs_dim)).astype(np.float32),
        rl2s=rl2s,
        rews=rews,
        dones=dones,
        actions=act,
        time_idxs=np.tile(np.arange(L, dtype=np.int64), (B, 1)),
    )


def count_update_flops(step, i: int = 0) -> int:
    """FLOPs of one call step(i), forward and backward: the ops torch.utils.flop_counter has
    formulas for (matmuls, convolutions, attention; elementwise work is not counted), plus
    PyTorch's CPU flash-attention ops, which it has none for, counted with its SDPA formulas
    (dense L x L, as AMAGO's einsum attention on CPU is counted). A plain dispatch mode:
    FlopCounterMode's module tracker fails on AMAGO's no-grad target forward."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry, sdpa_backward_flop_count, sdpa_flop_count, shape_wrapper

    aten = torch.ops.aten
    registry = dict(flop_registry)
    registry[aten._scaled_dot_product_flash_attention_for_cpu] = shape_wrapper(
        lambda q, k, v, *a, out_shape=None, **kw: sdpa_flop_count(q, k, v)
    )
    registry[aten._scaled_dot_product_flash_attention_for_cpu_backward] = shape_wrapper(
        lambda g, q, k, v, *a, out_shape=None, **kw: sdpa_backward_flop_count(g, q, k, v)
    )
    total = 0

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            nonlocal total
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = registry.get(func._overloadpacket)
            if formula is not None:
                total += int(formula(*args, **kwargs, out_val=out))
            return out

    with Count():
        step(i)
    return total


DENSE_OPS = ("mm", "addmm", "bmm", "baddbmm", "_scaled_dot_product_flash_attention_for_cpu")


def dense_floor(step, i: int = 0, reps: int = 3) -> dict:
    """How long one call step(i) would take if it did nothing but its dense math: every
    matmul (mm, addmm, bmm, baddbmm) and CPU flash-attention call (forward and backward) of
    the update is recorded with its shapes, strides and scalar arguments, then replayed alone
    on random data of the same layout, best of `reps`, identical calls timed once. The floor
    is a lower bound on the update's time on this machine at this math: what it leaves out
    (elementwise ops, norms, softmax outside SDPA, the optimizer, Python) can only add.
    -> {"floor_s", "dense_calls", "distinct_calls"}"""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    calls: dict[tuple, int] = {}

    def spec(x):
        if isinstance(x, torch.Tensor):
            return ("T", tuple(x.shape), tuple(x.stride()), x.dtype)
        if isinstance(x, (list, tuple)):
            return type(x)(spec(y) for y in x)
        return x

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func._overloadpacket.__name__.startswith(DENSE_OPS):
                key = (func, spec(tuple(args)), tuple(sorted((k, spec(v)) for k, v in kwargs.items())))
                calls[key] = calls.get(key, 0) + 1
            return func(*args, **kwargs)

    with Record():
        step(i)

    def make(x):
        if isinstance(x, tuple) and len(x) == 4 and x[0] == "T":
            _, shape, stride, dtype = x
            span = 1 + sum((n - 1) * st for n, st in zip(shape, stride) if n > 0)
            return torch.randn(span).to(dtype).as_strided(shape, stride)
        if isinstance(x, (list, tuple)):
            return type(x)(make(y) for y in x)
        return x

    floor = 0.0
    with torch.no_grad():
        for (func, args, kwargs), n in calls.items():
            a, kw = make(args), {k: make(v) for k, v in kwargs}
            best = float("inf")
            for _ in range(reps):
                t = time.perf_counter()
                func(*a, **kw)
                best = min(best, time.perf_counter() - t)
            floor += n * best
    return dict(floor_s=floor, dense_calls=sum(calls.values()), distinct_calls=len(calls))


def _time_updates(step, s: Settings, log: _Log, warmup_updates: int = 3) -> dict:
    """Run step(i) until budget_s; updates/s over the updates after the first few. The first
    warm-up update is also counted in FLOPs, so the report shows how much work one update is
    (a ratio of updates/s at equal work per FLOP is bounded by the ratio of FLOPs)."""
    flops = count_update_flops(step, 0)
    for i in range(1, warmup_updates):
        step(i)
    t0 = time.perf_counter()
    n = 0
    next_report = 10.0
    while (now := time.perf_counter()) - t0 < s.budget_s:
        step(n)
        n += 1
        if now - t0 >= next_report:
            log.write(dict(updates=n, wall_s=round(now - t0, 2)))
            next_report += 10.0
    wall = time.perf_counter() - t0
    floor = dense_floor(step, n)
    return dict(
        updates=n,
        wall_s=round(wall, 2),
        updates_per_s=n / wall,
        flops_per_update=flops,
        gflops_per_s=round(flops * n / wall / 1e9, 2),
        dense_floor_s=floor["floor_s"],
        dense_calls=floor["dense_calls"],
    )


def main(argv: Optional[list[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3 or argv[0] not in ("amago", "fast"):
        raise SystemExit("usage: vs_amago_worker.py {amago,fast} SETTINGS_JSON OUT_JSONL")
    system, settings_path, out_path = argv
    with open(settings_path) as f:
        s = Settings(**json.load(f)).check()
    if system == "amago":
        os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")
    import torch

    torch.set_num_threads(1)
    _seed(s.seed)
    log = _Log(out_path)
    t0 = time.perf_counter()
    fn = {
        ("amago", True): throughput_amago,
        ("fast", True): throughput_fast,
        ("amago", False): run_amago,
        ("fast", False): run_fast,
    }[(system, s.task == "throughput")]
    out = fn(s, log)
    out.update(
        system=system,
        total_s=round(time.perf_counter() - t0, 2),
        cpus=sorted(os.sched_getaffinity(0)),
        torch_threads=torch.get_num_threads(),
    )
    log.write({"final": out})


if __name__ == "__main__":
    main()

"""How far amago_fast's updates drift from AMAGO's over a long run, against float noise.

The training parity test (tests/compat/test_training_parity.py) holds the two updates
together for 7 updates on random windows. This runs them much longer, on dark key-door
rollouts, and asks whether the gap that opens is more than float32 rounding opens:

- amago_fast's `Agent` and AMAGO's `Agent` (AMAGO's own classes under its
  `Experiment.train_step` sequence) start from the same weights
  (`tests/compat/amago_twin.py`) and train on the same batches with the same random draws;
- a reference: AMAGO's agent again, from the same weights, trained in float64 - AMAGO's
  exact trajectory, as near as its own code allows (its sinusoidal positions and its
  discount factors, a plain float32 tensor, stay float32).

Training is chaotic (the binary advantage filter and Adam's normalisation of near-zero
gradients turn rounding into whole steps), so any two float32 runs drift apart. The
question is whether amago_fast's float32 run strays from AMAGO's exact trajectory more
than AMAGO's own float32 run does. A behavioural difference (say `dpg_critics="current"`)
opens a gap orders of magnitude wider within the first updates. Data: AMAGO's RoomKeyDoor
(dark, 5x5, inner episodes of 20, trials of 100) under a uniform random policy, whole
100-step trials as windows.

Needs AMAGO (AMAGO_SRC on sys.path, gymnasium 0.29 - run it with .venv-amago) and the
source checkout (it imports the twin builder from tests/compat):

    AMAGO_SRC=../shared/peers/amago PYTHONPATH=../shared/peers/amago \\
        .venv-amago/bin/python benchmarks/update_drift.py --updates 1000 --out drift.json
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Optional

import gymnasium as gym
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "compat"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from amago_twin import AmagoUpdates, amago_twin, mapped_tensors  # noqa: E402
from vs_amago import _parse_bool  # noqa: E402 - a sibling script, found through sys.path

from amago_fast.agent import Agent, AgentConfig, TorchBatch  # noqa: E402

A = 5  # RoomKeyDoor's actions
DKD_AGENT = dict(  # benchmarks/vs_amago.py's dark key-door agent, dropout off (its masks differ)
    d_model=64,
    n_heads=4,
    n_layers=2,
    d_ff=256,
    tstep_hidden=128,
    tstep_dim=64,
    head_hidden=64,
    max_seq_len=101,
    dropout=0.0,
    pos_emb="fixed",
    lr=1e-4,
    warmup=500,
    reward_multiplier=100.0,
    policy_gamma=0.999,
)


def random_rollouts(n: int, seed: int = 0, meta_horizon: int = 100) -> list[dict[str, np.ndarray]]:
    """n dark key-door trials under a uniform random policy (AMAGO's RoomKeyDoor)."""
    from amago.envs.builtin.toy_gym import RoomKeyDoor

    random.seed(seed)  # RoomKeyDoor draws its rooms from `random`
    rng = np.random.default_rng(seed)
    env = RoomKeyDoor(dark=True, size=5, max_episode_steps=20, meta_rollout_horizon=meta_horizon)
    out = []
    for _ in range(n):
        o, _ = env.reset()
        obs, acts, rews, dones, done = [o], [], [], [], False
        while not done:
            a = int(rng.integers(A))
            o, r, terminated, truncated, _ = env.step(a)
            obs.append(o), acts.append(a), rews.append(r), dones.append(terminated)
            done = terminated or truncated
        out.append(
            dict(
                obs=np.array(obs, np.float32),
                actions=np.array(acts),
                rews=np.array(rews, np.float32),
                dones=np.array(dones),
            )
        )
    return out


def batch_of(rollouts: list[dict], idx: np.ndarray) -> tuple[TorchBatch, dict[str, Any]]:
    """The same whole-trial windows as amago_fast's TorchBatch and AMAGO's Batch fields."""
    obs = torch.from_numpy(np.stack([rollouts[i]["obs"] for i in idx]))
    act = torch.nn.functional.one_hot(torch.from_numpy(np.stack([rollouts[i]["actions"] for i in idx])), A).float()
    rew = torch.from_numpy(np.stack([rollouts[i]["rews"] for i in idx]))[..., None]
    done = torch.from_numpy(np.stack([rollouts[i]["dones"] for i in idx])).float()[..., None]
    B, T = act.shape[:2]
    rl2s = torch.cat([torch.zeros(B, 1, 1 + A), torch.cat([rew, act], -1)], 1)
    t = torch.arange(T + 1).repeat(B, 1)
    ours = TorchBatch(
        obs={"observation": obs},
        rl2s=rl2s,
        time_idxs=t,
        actions=act,
        rews=rew[..., 0],
        dones=done[..., 0] > 0.5,
        mask=torch.ones(B, T + 1, dtype=torch.bool),
    )
    return ours, dict(obs={"observation": obs}, rl2s=rl2s, rews=rew, dones=done, actions=act, time_idxs=t[..., None])


def _rel_l2(pairs) -> float:
    num = sum(((a - b) ** 2).sum().item() for a, b in pairs)
    den = sum((b**2).sum().item() for _, b in pairs)
    return (num / den) ** 0.5


def _as_double(groups: dict) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """mapped_tensors' groups flattened, both sides in float64."""
    return [(a.double(), b.double()) for v in groups.values() for a, b in v]


def _double(batch: dict) -> dict:
    return {
        k: {n: t.double() for n, t in v.items()}
        if isinstance(v, dict)
        else (v.double() if v.is_floating_point() else v)
        for k, v in batch.items()
    }


class _Float64:
    """Inside: torch's default dtype is float64 (AMAGO makes tensors with it) and
    `Tensor.float()` leaves float64 tensors alone (AMAGO casts its sigma-reparam vectors
    and a few others with it). Both restored on exit."""

    def __enter__(self):
        self.was, self.cast = torch.get_default_dtype(), torch.Tensor.float
        torch.set_default_dtype(torch.float64)
        cast = self.cast
        torch.Tensor.float = lambda t, *a, **k: t if t.dtype == torch.float64 else cast(t, *a, **k)

    def __exit__(self, *exc):
        torch.set_default_dtype(self.was)
        torch.Tensor.float = self.cast


def run_drift(
    real_amago,
    updates: int,
    agent_kw: Optional[dict] = None,
    batch_size: int = 24,
    n_rollouts: int = 200,
    meta_horizon: int = 100,
    checkpoints: Optional[list[int]] = None,
    seed: int = 0,
    log=None,
) -> list[dict]:
    """Train amago_fast and AMAGO in float32 and AMAGO's float64 reference side by side for
    `updates` updates; at each checkpoint record the relative L2 distance of all mapped
    weights (each float32 run vs the reference, and amago_fast vs AMAGO), amago_fast's
    largest gap to AMAGO per network group and the losses."""
    kw = {**DKD_AGENT, "max_seq_len": meta_horizon + 1, **(agent_kw or {})}  # whole trials as windows
    cfg = AgentConfig(**kw)
    rollouts = random_rollouts(n_rollouts, seed, meta_horizon)
    obs_dim = rollouts[0]["obs"].shape[1]
    space = gym.spaces.Discrete(A)
    torch.manual_seed(seed)
    ours = Agent(gym.spaces.Dict({"observation": gym.spaces.Box(0, 1, (obs_dim,), np.float32)}), space, cfg)
    theirs = amago_twin(real_amago, ours, cfg, space, A)
    exact = copy.deepcopy(theirs).double()
    upd_theirs, upd_exact = AmagoUpdates(real_amago, theirs, cfg), AmagoUpdates(real_amago, exact, cfg)
    ours.train(), theirs.train(), exact.train()
    marks = set(checkpoints or [1, 10, 30, 100, 300, 1000, 2000]) | {updates}
    rng = np.random.default_rng(seed + 1)
    out, t0 = [], time.perf_counter()
    for k in range(updates):
        b_ours, b_theirs = batch_of(rollouts, rng.integers(0, len(rollouts), batch_size))
        torch.manual_seed(1000 + k)  # the same draws on all three, in AMAGO's order
        loss_ours = ours.train_step(b_ours)["train/loss"]
        torch.manual_seed(1000 + k)
        loss_theirs, _ = upd_theirs.step(b_theirs)
        torch.manual_seed(1000 + k)
        with _Float64():
            loss_exact, _ = upd_exact.step(_double(b_theirs))
        if k + 1 in marks:
            fast = mapped_tensors(ours, theirs)
            rec = dict(
                update=k + 1,
                fast_vs_exact=_rel_l2(_as_double(mapped_tensors(ours, exact))),
                amago_vs_exact=_rel_l2(_param_pairs(theirs, exact)),
                fast_vs_amago=_rel_l2(_as_double(fast)),
                fast_max_abs={n: max((a - b).abs().max().item() for a, b in v) for n, v in fast.items()},
                loss=dict(fast=loss_ours, amago=loss_theirs, exact=loss_exact),
                popart_mu=dict(
                    fast=ours.popart.mu[-1].item(),
                    amago=theirs.popart.mu.view(-1)[-1].item(),
                    exact=exact.popart.mu.view(-1)[-1].item(),
                ),
                wall_s=round(time.perf_counter() - t0, 1),
            )
            out.append(rec)
            if log is not None:
                log(rec)
    return out


def _param_pairs(theirs, exact) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(float32 AMAGO, float64 AMAGO) for every parameter of AMAGO's agent."""
    ref = dict(exact.named_parameters())
    return [(p.detach().double(), ref[n].detach()) for n, p in theirs.named_parameters()]


def main(argv: Optional[list[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--updates", type=int, default=1000)
    ap.add_argument("--out", type=Path, help="write the records as JSON here")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="AgentConfig overrides")
    args = ap.parse_args(argv)
    src = os.environ.get("AMAGO_SRC")
    if src:
        sys.path.insert(0, src)
    try:
        import amago
    except ImportError as e:
        raise SystemExit(f"update_drift needs AMAGO importable (set AMAGO_SRC): {e}") from None
    fields = {f.name: f for f in dataclasses.fields(AgentConfig)}
    over: dict[str, Any] = {}
    for item in args.set:
        key, _, raw = item.partition("=")
        if key not in fields:
            raise SystemExit(f"--set: {key!r} is not an AgentConfig field")
        cur = DKD_AGENT.get(key, getattr(AgentConfig(), key))
        try:
            over[key] = _parse_bool(raw) if isinstance(cur, bool) else type(cur)(raw)
        except ValueError:
            raise SystemExit(f"--set {key}: cannot read {raw!r} as {type(cur).__name__}") from None
    torch.set_num_threads(1)

    def show(r):
        print(
            f"update {r['update']:>5}  to AMAGO float64: amago_fast {r['fast_vs_exact']:.2e}, "
            f"AMAGO {r['amago_vs_exact']:.2e}; amago_fast-AMAGO {r['fast_vs_amago']:.2e}  "
            f"loss {r['loss']['fast']:.4f} / {r['loss']['amago']:.4f}  "
            f"({r['wall_s']} s)",
            flush=True,
        )

    recs = run_drift(amago, args.updates, over, log=show)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(args.out.suffix + ".tmp")
        tmp.write_text(json.dumps(dict(agent={**DKD_AGENT, **over}, records=recs), indent=1))
        os.replace(tmp, args.out)


if __name__ == "__main__":
    main()

"""Checkpoints without pickle: safetensors for tensors, JSON for everything else.

Layout of one checkpoint directory (written under a temporary name, fsynced, renamed):

    weights.safetensors    agent state_dict (online + target nets, PopArt, sigma-reparam)
    optimizer.safetensors  AdamW per-parameter tensors, torch RNG state(s), carried gradients
                           (dpg_critics="amago": AMAGO's never-zeroed DPG critic gradients)
    state.json             configs, optimizer scalars, scheduler, counters, numpy/python
                           RNG states, exploration state, anything the trainer adds
    replay/                ReplayBuffer.save snapshot (optional)

A checkpoint exists only once its directory is renamed to ``step_<env steps>``; a process
killed at any point leaves either the previous set of checkpoints or the new one, plus at
most a ``.step_*.XXXX`` temporary directory that ``sweep_temp`` removes on the next start.
run_dir/checkpoints/latest.json names the newest checkpoint written, but readers scan the
directory (``latest_checkpoint``): a kill between the rename and latest.json loses nothing.
Weights are checked before anything is written: a non-finite state dict is refused
(``NonFiniteWeightsError``), so pruning can never drop a finite checkpoint for a broken one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

LATEST = "latest.json"
PREFIX = "step_"
REQUIRED_FILES = ("weights.safetensors", "optimizer.safetensors", "state.json")


class NonFiniteWeightsError(RuntimeError):
    """The agent's weights hold NaN/inf: the checkpoint was not written."""


class ResumeError(RuntimeError):
    """Nothing to resume from (no complete checkpoint); the message is one line for users."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temporary file in the same folder, fsync, rename over path."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split optimizer.state_dict() into tensors (safetensors) and JSON scalars."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"state.{idx}.{k}"] = v
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for name, v in tensors.items():
        if not name.startswith("state."):
            continue
        _, idx, k = name.split(".", 2)
        state.setdefault(int(idx), {})[k] = v
    for name, v in meta["scalars"].items():
        idx, k = name.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def carried_grads_to_flat(agent) -> dict[str, torch.Tensor]:
    """Gradients that outlive an update (dpg_critics="amago": AMAGO never zeroes its DPG
    critic copy's), so a resumed run clips and accumulates exactly as the uninterrupted one."""
    carried = agent.carried_grads()
    return {f"carried_grad.{n}": p.grad for n, p in carried.items() if p.grad is not None}


def carried_grads_from_flat(agent, tensors: dict[str, torch.Tensor]) -> None:
    for n, p in agent.carried_grads().items():
        g = tensors.get(f"carried_grad.{n}")
        p.grad = None if g is None else g.to(p.device, p.dtype).clone()


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, json) capturing torch (CPU + CUDA), numpy-global and python RNGs."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    np_state = np.random.get_state()
    py_state = random.getstate()
    meta = {
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    n = meta["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    p = meta["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))


def save_checkpoint(
    ckpt_root: Path,
    name: str,
    agent,
    state: dict,
    save_replay: Optional[Callable[[Path], None]] = None,
    keep: int = 2,
) -> Path:
    """Write checkpoint `name` under ckpt_root atomically; update latest.json; prune old ones."""
    ckpt_root = Path(ckpt_root)
    weights = agent.state_dict()
    bad = nonfinite_tensors(weights)
    if bad:
        raise NonFiniteWeightsError(
            f"checkpoint {name}: refused, {len(bad)} weight tensor(s) hold NaN/inf (first: {bad[0]}); "
            f"the checkpoints already in {ckpt_root} are kept"
        )
    ckpt_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=ckpt_root))
    try:
        _save_tensors(tmp / "weights.safetensors", weights)
        opt_t, opt_meta = optimizer_to_flat(agent.optimizer)
        rng_t, rng_meta = rng_state()
        _save_tensors(tmp / "optimizer.safetensors", {**opt_t, **rng_t, **carried_grads_to_flat(agent)})
        full = dict(state)
        full.update(
            optimizer=opt_meta,
            scheduler={k: v for k, v in agent.scheduler.state_dict().items() if k != "lr_lambdas"},
            rng=rng_meta,
            agent_grad_steps=agent.grad_steps,
        )
        write_json_atomic(tmp / "state.json", full)
        if save_replay is not None:
            save_replay(tmp / "replay")
        _fsync_dir(tmp)
        final = ckpt_root / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(ckpt_root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_json_atomic(ckpt_root / LATEST, {"checkpoint": name})
    # only complete checkpoints count and are pruned, oldest first; the new one is always kept
    done = [p for p in complete_checkpoints(ckpt_root) if p.name != name]
    for old in done[: max(0, len(done) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def nonfinite_tensors(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of floating-point tensors holding NaN or inf."""
    return [
        k
        for k, v in tensors.items()
        if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())
    ]


def is_complete(path: Path) -> bool:
    """A checkpoint directory whose files are all there and readable (headers, state.json)."""
    path = Path(path)
    try:
        if not all((path / f).is_file() for f in REQUIRED_FILES):
            return False
        for f in ("weights.safetensors", "optimizer.safetensors"):
            with safe_open(str(path / f), "pt") as fh:  # header + size check, no tensor read
                fh.keys()
        return isinstance(json.loads((path / "state.json").read_text()), dict)
    except (OSError, ValueError, SafetensorError):
        return False


def _step_of(path: Path) -> Optional[int]:
    name = path.name
    if not name.startswith(PREFIX) or not name[len(PREFIX) :].isdigit():
        return None
    return int(name[len(PREFIX) :])


def complete_checkpoints(ckpt_root: Path) -> list[Path]:
    """Every complete ``step_*`` checkpoint under ckpt_root, oldest (fewest steps) first."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return []
    found = [(s, p) for p in root.iterdir() if p.is_dir() and (s := _step_of(p)) is not None]
    return [p for _, p in sorted(found) if is_complete(p)]


def latest_checkpoint(ckpt_root: Path) -> Optional[Path]:
    """The newest complete checkpoint directory, found by scanning ckpt_root (latest.json may
    be missing or stale after a kill), or None."""
    done = complete_checkpoints(ckpt_root)
    return done[-1] if done else None


def sweep_temp(ckpt_root: Path) -> list[str]:
    """Remove what killed checkpoint writers left: ``.step_*.XXXX`` directories and
    ``latest.json.*.tmp`` files. Call before a run starts writing; returns what was removed."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return []
    removed = []
    for p in root.iterdir():
        if p.is_dir() and p.name.startswith("." + PREFIX):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p.name)
        elif p.is_file() and p.name.startswith(LATEST + ".") and p.name.endswith(".tmp"):
            p.unlink(missing_ok=True)
            removed.append(p.name)
    return removed


def load_weights(agent, ckpt: Path) -> None:
    """Load only the agent's weights (eval, inference)."""
    agent.load_state_dict(load_file(str(Path(ckpt) / "weights.safetensors"), device=str(agent.device)))


def load_checkpoint(ckpt: Path, agent) -> dict:
    """Restore weights, optimizer, scheduler, RNGs into `agent` and the process; return
    state.json (the trainer restores its own parts from it)."""
    ckpt = Path(ckpt)
    load_weights(agent, ckpt)
    state = json.loads((ckpt / "state.json").read_text())
    tensors = load_file(str(ckpt / "optimizer.safetensors"))
    optimizer_from_flat(
        agent.optimizer,
        {k: v.to(agent.device) if not k.startswith("rng.") else v for k, v in tensors.items()},
        state["optimizer"],
    )
    sched = dict(state["scheduler"])
    sched["lr_lambdas"] = [None] * len(agent.optimizer.param_groups)
    agent.scheduler.load_state_dict(sched)
    agent.grad_steps = int(state["agent_grad_steps"])
    carried_grads_from_flat(agent, tensors)
    set_rng_state(tensors, state["rng"])
    return state

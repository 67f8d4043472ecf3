"""Run metrics: one JSON object per line in ``run_dir/metrics.jsonl``, always; TensorBoard
and Weights & Biases as well when they are installed and asked for.

Each record is a flat dict such as ``{"env_steps": 4096, "grad_steps": 500, "wall_s": 61.2,
"train/critic_loss": 0.03, "eval/return_mean": 0.9, "eval/success_rate": 0.95}``; the
step keys give plots x-axes that mean something. Lines are flushed as they are written,
so a crash loses at most the line being written; ``read_metrics`` skips such a truncated
line, and reopening a run (resume) starts a fresh line after it. NaN/inf values are
written as null so that the file stays strict JSON.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import warnings
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
STEP_KEYS = ("env_steps", "grad_steps", "wall_s")  # x-axes, not curves


def _to_json_value(key: str, value: Any) -> Any:
    """Plain Python value for JSON (numpy / torch scalars and small arrays included)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None  # strict JSON has no NaN/inf
    if hasattr(value, "tolist"):  # numpy arrays/scalars, torch tensors
        if hasattr(value, "detach"):
            value = value.detach().cpu()
        return _to_json_value(key, value.tolist())
    if isinstance(value, (list, tuple)):
        return [_to_json_value(key, v) for v in value]
    raise TypeError(f"record[{key!r}]: cannot log a value of type {type(value).__name__}")


class MetricsLogger:
    """Append-only metrics log for one run (see module docstring).

    Args:
        run_dir: directory of the run (created if missing); metrics go to metrics.jsonl.
        tensorboard: also write TensorBoard scalars to run_dir/tensorboard.
        wandb: also log to Weights & Biases (project ``wandb_project``).
        wandb_project: W&B project name (default "amago_fast").
        config: the run's configuration, given to W&B / TensorBoard as hyperparameters.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        tensorboard: bool = False,
        wandb: bool = False,
        wandb_project: str | None = None,
        config: dict | None = None,
    ):
        if config is not None and not isinstance(config, dict):
            raise TypeError(f"config must be a dict or None, got {type(config).__name__}")
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / METRICS_FILE
        self._tb = self._open_tensorboard(config) if tensorboard else None
        self._wandb = self._open_wandb(wandb_project, config) if wandb else None
        # a crash may have left a partial last line: start ours on a fresh line
        needs_newline = self.path.exists() and self.path.stat().st_size > 0 and self.path.read_bytes()[-1:] != b"\n"
        self._file = open(self.path, "a", encoding="utf-8")
        if needs_newline:
            self._file.write("\n")
        self._count = 0

    def _open_tensorboard(self, config: dict | None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise ImportError(
                "tensorboard=True needs the tensorboard package: pip install 'amago_fast[tensorboard]'"
            ) from e
        writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
        if config:
            writer.add_text("config", "```\n" + json.dumps(config, indent=2, default=str) + "\n```")
        return writer

    def _open_wandb(self, project: str | None, config: dict | None):
        try:
            import wandb
        except ImportError as e:
            raise ImportError("wandb=True needs the wandb package: pip install 'amago_fast[wandb]'") from e
        run = wandb.init(project=project or "amago_fast", config=config or {}, dir=str(self.run_dir))
        run.define_metric("env_steps")
        run.define_metric("*", step_metric="env_steps")
        return run

    def log(self, record: dict) -> None:
        """Append one record (flat dict, str keys; scalar or list values) as a JSON line."""
        if not isinstance(record, dict):
            raise TypeError(f"record must be a dict, got {type(record).__name__}")
        clean = {}
        for key, value in record.items():
            if not isinstance(key, str):
                raise TypeError(f"record keys must be str, got {key!r}")
            clean[key] = _to_json_value(key, value)
        if self._file.closed:
            raise ValueError("log() on a closed MetricsLogger")
        self._file.write(json.dumps(clean) + "\n")
        self._file.flush()
        self._count += 1
        scalars = {k: v for k, v in clean.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self._tb is not None:
            step = int(clean.get("env_steps", clean.get("grad_steps", self._count)))
            for key, value in scalars.items():
                if key not in STEP_KEYS:
                    self._tb.add_scalar(key, value, global_step=step)
        if self._wandb is not None:
            self._wandb.log(scalars)

    def close(self) -> None:
        """Flush everything to disk (fsync) and close the backends. Idempotent."""
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

    def __enter__(self) -> "MetricsLogger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """All records of a metrics.jsonl (a run dir or the file itself).

    A truncated last line (a crash while writing) is skipped silently; any other
    unreadable line is skipped with a warning naming its line number.
    """
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.exists():
        raise FileNotFoundError(f"no metrics file at {path}")
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if i < len(lines) - 1 and any(rest.strip() for rest in lines[i + 1 :]):
                warnings.warn(f"{path}:{i + 1}: skipping an unreadable line", stacklevel=2)
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def series(records: list[dict], x_key: str, y_key: str) -> tuple[list[float], list[float]]:
    """(xs, ys) over the records holding finite numbers under both keys, in file order."""
    xs, ys = [], []
    for r in records:
        x, y = r.get(x_key), r.get(y_key)
        if (
            isinstance(x, (int, float))
            and isinstance(y, (int, float))
            and not isinstance(y, bool)
            and math.isfinite(x)
            and math.isfinite(y)
        ):
            xs.append(float(x))
            ys.append(float(y))
    return xs, ys

"""The files a run directory holds beside its checkpoints, and keeping them consistent
with the checkpoint a resume starts from."""

from __future__ import annotations

import json
import os
from pathlib import Path

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"


def trim_metrics(run_dir: Path, env_steps: int) -> int:
    """Drop metrics.jsonl records past `env_steps` (written after the checkpoint a resume
    starts from) and any unreadable line, atomically; returns how many were dropped."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return 0
    keep, dropped = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
            ok = isinstance(rec, dict) and int(rec.get("env_steps", 0)) <= env_steps
        except (ValueError, TypeError):
            ok = False
        if ok:
            keep.append(line + "\n")
        elif line.strip():
            dropped += 1
    if dropped:
        tmp = path.with_name(path.name + ".trim.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(keep)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    return dropped

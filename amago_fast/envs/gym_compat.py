"""The few places where gymnasium 0.29 (AMAGO's pin) and 1.x differ, behind one API.

amago_fast runs on gymnasium >= 0.29 so that it installs beside AMAGO (which pins
``gymnasium<=0.29.1``). What differs between the two for us:

- vector envs: 1.x takes ``autoreset_mode=AutoresetMode.SAME_STEP``; 0.29 has no such
  argument and always resets in the same step;
- a finished copy's last step: 1.x puts it in ``info["final_obs"]`` (array of per-copy
  observations) and ``info["final_info"]`` (a dict batched like ``info``); 0.29 in
  ``info["final_observation"]`` and ``info["final_info"]`` (array of per-copy dicts).

Code that truly needs 1.x calls ``require_gymnasium((1, 0), "what")``, which raises one
``GymnasiumVersionError`` naming the version it needs.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import gymnasium as gym


def _parse_version(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in re.findall(r"\d+", text)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))  # type: ignore[return-value]


GYMNASIUM_VERSION: tuple[int, int, int] = _parse_version(gym.__version__)
MIN_GYMNASIUM = (0, 29, 0)
HAS_AUTORESET_MODE = GYMNASIUM_VERSION >= (1, 0, 0)

# info keys that describe a finished copy's last step, never the copy's current step
FINAL_KEYS = frozenset({"final_obs", "final_info", "final_observation"})


class GymnasiumVersionError(ImportError):
    """The installed gymnasium is too old for the feature that was asked for."""


def require_gymnasium(minimum: tuple[int, ...], what: str, installed: tuple[int, ...] | None = None) -> None:
    """Raise ``GymnasiumVersionError`` unless gymnasium >= ``minimum`` is installed."""
    installed = GYMNASIUM_VERSION if installed is None else tuple(installed)
    minimum = tuple(minimum) + (0,) * (3 - len(minimum))
    if installed < minimum:
        need = ".".join(map(str, minimum))
        have = ".".join(map(str, installed))
        raise GymnasiumVersionError(
            f"{what} needs gymnasium>={need}; gymnasium {have} is installed (pip install 'gymnasium>={need}')"
        )


if GYMNASIUM_VERSION < MIN_GYMNASIUM:  # pragma: no cover - pip's pin prevents this
    require_gymnasium(MIN_GYMNASIUM, "amago_fast.envs")


def make_vector_env(env_fns: Sequence[Callable[[], gym.Env]], vectorization: str):
    """A Sync/AsyncVectorEnv that resets a finished copy inside the same ``step``."""
    from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv

    cls = SyncVectorEnv if vectorization == "sync" else AsyncVectorEnv
    if HAS_AUTORESET_MODE:
        from gymnasium.vector import AutoresetMode

        return cls(list(env_fns), autoreset_mode=AutoresetMode.SAME_STEP)
    return cls(list(env_fns))  # 0.29: same-step autoreset is the only mode


def unbatch_info(info: dict, i: int) -> dict:
    """Copy i's entries of a vector env's info dict (``_key`` masks say who has what),
    without the finished-step keys (see ``final_step``)."""
    out = {}
    for key, value in info.items():
        if key.startswith("_") or key in FINAL_KEYS:
            continue
        mask = info.get("_" + key)
        if mask is not None and not mask[i]:
            continue
        out[key] = unbatch_info(value, i) if isinstance(value, dict) else value[i]
    return out


def final_step(info: dict, i: int) -> tuple[Any, dict]:
    """(final observation, final info) of copy i, which finished in this ``step``."""
    if "final_obs" in info:  # gymnasium 1.x
        final_info = info.get("final_info")
        return info["final_obs"][i], (unbatch_info(final_info, i) if final_info else {})
    if "final_observation" in info:  # gymnasium 0.29
        final_info = info.get("final_info")
        per_copy = final_info[i] if final_info is not None else None
        return info["final_observation"][i], dict(per_copy or {})
    raise KeyError(
        "the vector env's info has no final observation for a finished copy "
        f"(keys: {sorted(info)}); was it built by make_vector_env?"
    )


def has_step_info(info: dict) -> bool:
    """Whether ``info`` holds anything beyond masks and finished-step keys."""
    return any(not k.startswith("_") and k not in FINAL_KEYS for k in info)

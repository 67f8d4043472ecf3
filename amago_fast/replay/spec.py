"""Field layout of a replay buffer and input validation at the Python boundary.

A buffer stores, per trajectory of T transitions, one array per *field*: observation
keys, ``rl2s`` and ``time_idxs`` hold T+1 rows ("obs-like"); ``actions``, ``rews`` and
``dones`` hold T rows ("transition" fields). Everything a user passes in is checked here,
before any native call, so mistakes surface as ValueError/TypeError naming the argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

OBS_PREFIX = "obs/"
DEFAULT_OBS_KEY = "observation"  # AMAGO's key for a non-Dict observation space


@dataclass(frozen=True)
class Field:
    """One stored array per trajectory."""

    name: str
    """'obs/<key>', 'rl2s', 'time_idxs', 'actions', 'rews' or 'dones'."""
    dtype: np.dtype
    """Storage dtype (inputs of the same kind are cast to it)."""
    shape: tuple
    """Per-timestep shape; () for scalars (returned in batches as (..., 1))."""
    obs_like: bool
    """True: T+1 rows per trajectory; False: T rows."""

    @property
    def row_bytes(self) -> int:
        return int(np.dtype(self.dtype).itemsize * int(np.prod(self.shape, dtype=np.int64)))

    @property
    def batch_shape(self) -> tuple:
        """Trailing shape inside a Batch (scalars get a unit axis, as in AMAGO)."""
        return self.shape if self.shape else (1,)


def make_fields(obs_fields: Mapping[str, tuple], action_dim: int) -> list[Field]:
    """Field list from an explicit spec: ``{key: (shape, dtype)}`` and the action width A."""
    if not isinstance(obs_fields, Mapping) or not obs_fields:
        raise ValueError("fields must be a non-empty mapping {obs_key: (shape, dtype)}")
    if not isinstance(action_dim, (int, np.integer)) or isinstance(action_dim, bool) or action_dim < 1:
        raise ValueError(f"action_dim must be a positive int, got {action_dim!r}")
    out = []
    for key, spec in obs_fields.items():
        if not isinstance(key, str) or not key or "/" in key:
            raise ValueError(f"fields: observation key {key!r} must be a non-empty str without '/'")
        try:
            shape, dtype = spec
            shape = tuple(int(s) for s in shape)
            dtype = np.dtype(dtype)
        except Exception as e:  # noqa: BLE001 - re-raised with the key named
            raise ValueError(f"fields[{key!r}] must be (shape, dtype), got {spec!r}") from e
        if any(s < 1 for s in shape):
            raise ValueError(f"fields[{key!r}]: shape {shape} has a non-positive dimension")
        if dtype.kind not in "biuf" or dtype.hasobject:
            raise TypeError(f"fields[{key!r}]: dtype {dtype} is not a numeric or bool dtype")
        out.append(Field(OBS_PREFIX + key, dtype, shape, True))
    A = int(action_dim)
    out += [
        Field("rl2s", np.dtype(np.float32), (1 + A,), True),
        Field("time_idxs", np.dtype(np.int64), (), True),
        Field("actions", np.dtype(np.float32), (A,), False),
        Field("rews", np.dtype(np.float32), (), False),
        Field("dones", np.dtype(np.bool_), (), False),
    ]
    return out


def _obs_field_of_space(key: str, space: Any) -> tuple:
    from gymnasium import spaces

    if isinstance(space, spaces.Box):
        return tuple(space.shape), space.dtype
    if isinstance(space, spaces.Discrete):
        return (), np.int64
    if isinstance(space, spaces.MultiBinary):
        return tuple(np.atleast_1d(space.n)), space.dtype or np.int8
    if isinstance(space, spaces.MultiDiscrete):
        return tuple(space.shape), space.dtype
    raise TypeError(f"observation_space[{key!r}]: unsupported space {type(space).__name__}")


def spec_from_spaces(observation_space: Any, action_space: Any) -> tuple[dict, int]:
    """(obs_fields, action_dim) from gymnasium spaces, AMAGO-style.

    A non-Dict observation space is stored under the key ``"observation"``. Discrete(n)
    actions are stored one-hot (A = n); Box and MultiBinary flatten (A = prod(shape)).
    """
    from gymnasium import spaces

    if isinstance(observation_space, spaces.Dict):
        items = list(observation_space.spaces.items())
    elif isinstance(observation_space, spaces.Space):
        items = [(DEFAULT_OBS_KEY, observation_space)]
    else:
        raise TypeError(f"observation_space must be a gymnasium space, got {type(observation_space).__name__}")
    obs_fields = {k: _obs_field_of_space(k, s) for k, s in items}
    if isinstance(action_space, spaces.Discrete):
        A = int(action_space.n)
    elif isinstance(action_space, (spaces.Box, spaces.MultiBinary)):
        A = int(np.prod(action_space.shape))
    else:
        raise TypeError(f"action_space: unsupported space {type(action_space).__name__} (Discrete, Box or MultiBinary)")
    return obs_fields, A


def to_numpy(x: Any, name: str) -> np.ndarray:
    """Array view of x (numpy, torch CPU tensor, scalar or list), never silently copying
    a non-contiguous numpy array."""
    if isinstance(x, np.ndarray):
        arr = x
    elif type(x).__module__.split(".")[0] == "torch":
        arr = x.detach().cpu().numpy()
    else:
        arr = np.asarray(x)
    if arr.dtype.hasobject:
        raise TypeError(f"{name}: object arrays are not accepted")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (pass np.ascontiguousarray({name}))")
    return arr


def check_array(x: Any, name: str, dtype: np.dtype, shape: Sequence[int]) -> np.ndarray:
    """Validate one input array and return it as a C-contiguous array of ``dtype``.

    ``shape`` is the expected shape; for scalar-per-step fields a trailing unit axis is
    also accepted (AMAGO stores rews/dones/time_idxs as (T, 1)). Casts only within the
    same kind (e.g. float64 -> float32, int32 -> int64); bool fields accept only bool.
    """
    arr = to_numpy(x, name)
    shape = tuple(shape)
    if arr.shape != shape:
        if arr.shape == shape + (1,):
            arr = arr.reshape(shape)
        else:
            raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
    dtype = np.dtype(dtype)
    if arr.dtype != dtype:
        ok = arr.dtype == np.bool_ if dtype == np.bool_ else np.can_cast(arr.dtype, dtype, "same_kind")
        if not ok:
            raise TypeError(f"{name}: dtype {arr.dtype} cannot be stored as {dtype}")
        arr = arr.astype(dtype)
    return arr


def one_hot_actions(x: Any, A: int, name: str = "actions") -> Any:
    """Integer action indices (n,) or (n, 1) -> one-hot (n, A) float32 (Discrete spaces);
    anything else is returned unchanged for the usual (n, A) checks."""
    arr = to_numpy(x, name)
    if arr.ndim == 1 and A > 1 and arr.dtype.kind == "f":
        raise TypeError(
            f"{name}: Discrete action indices must be integers, got {arr.dtype} "
            f"(or pass one-hot vectors of shape (n, {A}))"
        )
    if arr.dtype.kind not in "iu" or arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape[1] != 1):
        return x
    idx = arr.reshape(-1)
    if len(idx) and (idx.min() < 0 or idx.max() >= A):
        raise ValueError(f"{name}: Discrete action indices must lie in [0, {A})")
    out = np.zeros((len(idx), A), np.float32)
    out[np.arange(len(idx)), idx] = 1.0
    return out

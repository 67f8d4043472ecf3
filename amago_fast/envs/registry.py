"""Env registry and ``make_env``: names -> vectorized envs in the AMAGO time-step format.

Names: the built-ins (``tmaze``, ``bandit``, ``dark-key-door``), anything added with
``register_env``, ``gym:<id>`` for any registered gymnasium id (``gym:<module>:<id>``
imports ``module`` first, as ``gym.make`` does), and ``popgym:<Name>``
when the optional ``popgym`` package is installed (``pip install amago_fast[popgym]``).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

import gymnasium as gym

from .wrapper import AmagoVecEnv

EnvFactory = Callable[..., gym.Env]  # factory(**env_args) -> one gymnasium env
_REGISTRY: dict[str, EnvFactory] = {}
# "<prefix>:<rest>" -> resolver(rest) -> factory (optional env families, see families.py)
_PREFIXES: dict[str, Callable[[str], EnvFactory]] = {}
_PATTERNS: dict[str, str] = {}  # prefix -> the name pattern available_envs lists


def register_prefix(prefix: str, resolver: Callable[[str], EnvFactory], pattern: str) -> None:
    """Make ``<prefix>:<rest>`` names resolve through ``resolver(rest)``; ``pattern`` is
    what ``available_envs`` lists (e.g. ``"babyai:<Level>"``)."""
    if not isinstance(prefix, str) or not prefix or ":" in prefix or prefix in ("gym", "popgym"):
        raise ValueError(f"prefix must be a new non-empty string without ':', got {prefix!r}")
    _PREFIXES[prefix] = resolver
    _PATTERNS[prefix] = pattern


def register_env(name: str, factory: EnvFactory, *, overwrite: bool = False) -> None:
    """Make ``make_env(name, **env_args)`` build envs with ``factory(**env_args)``."""
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"name must be a non-empty string without ':', got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {type(factory).__name__}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"env {name!r} is already registered (pass overwrite=True)")
    _REGISTRY[name] = factory


def available_envs() -> list[str]:
    """Registered names plus the ``gym:<id>`` / ``popgym:<Name>`` patterns."""
    return sorted(_REGISTRY) + ["gym:<id>", "popgym:<Name>"] + sorted(_PATTERNS.values())


def _check_env_args(factory: Callable, env_args: dict, name: str) -> None:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return  # builtins / C extensions: let the constructor complain
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    accepted = [p.name for p in sig.parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    bad = sorted(set(env_args) - set(accepted))
    if bad:
        raise ValueError(f"env {name!r}: unknown env_args {bad}; accepted: {accepted}")


def _gym_factory(env_id: str, env_args: dict) -> EnvFactory:
    # "module:Id" (as gym.make accepts it): import the module, which registers Id
    module, _, bare_id = env_id.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ValueError(f"env 'gym:{env_id}': cannot import module {module!r}: {e}") from None
    try:
        spec = gym.spec(bare_id)
    except gym.error.Error as e:  # NameNotFound, VersionNotFound, ...
        raise ValueError(f"env 'gym:{env_id}': {e} (list ids with gymnasium.pprint_registry())") from None
    if isinstance(spec.entry_point, str) or callable(spec.entry_point):
        try:
            creator = (
                gym.envs.registration.load_env_creator(spec.entry_point)
                if isinstance(spec.entry_point, str)
                else spec.entry_point
            )
            _check_env_args(
                creator,
                {k: v for k, v in env_args.items() if k not in ("max_episode_steps", "render_mode")},
                f"gym:{env_id}",
            )
        except (ImportError, AttributeError, gym.error.DependencyNotInstalled) as e:
            raise ValueError(f"env 'gym:{env_id}' cannot be loaded: {e}") from None
    return lambda **kw: gym.make(env_id, **kw)


def _popgym_factory(env_name: str) -> EnvFactory:
    try:
        import popgym.envs as popgym_envs  # optional dependency
    except ImportError:
        raise ValueError(
            f"env 'popgym:{env_name}' needs the optional popgym package: pip install 'amago_fast[popgym]'"
        ) from None
    classes = {c.__name__: c for c in getattr(popgym_envs, "ALL", {})}
    for attr in dir(popgym_envs):  # the ALL table may miss some classes
        obj = getattr(popgym_envs, attr)
        if inspect.isclass(obj) and issubclass(obj, gym.Env):
            classes.setdefault(attr, obj)
    if env_name not in classes:
        raise ValueError(f"env 'popgym:{env_name}' not found; popgym envs: {sorted(classes)}")
    return classes[env_name]


def resolve_env(name: str, env_args: dict | None = None) -> EnvFactory:
    """The factory behind ``name``; ValueError listing the choices if there is none."""
    env_args = env_args or {}
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name.startswith("gym:"):
        return _gym_factory(name[len("gym:") :], env_args)
    prefix, sep, rest = name.partition(":")
    if name.startswith("popgym:"):
        factory = _popgym_factory(name[len("popgym:") :])
    elif sep and prefix in _PREFIXES:
        factory = _PREFIXES[prefix](rest)
    elif name in _REGISTRY:
        factory = _REGISTRY[name]
    else:
        raise ValueError(f"unknown env {name!r}; available: {available_envs()}")
    _check_env_args(factory, env_args, name)
    return factory


def make_env(
    name: str, num_envs: int = 1, seed: int | None = None, vectorization: str = "sync", **env_args: Any
) -> AmagoVecEnv:
    """Build ``num_envs`` copies of env ``name`` in the AMAGO time-step format.

    Args:
        name: "tmaze" | "bandit" | "dark-key-door" | a ``register_env`` name |
            "gym:<id>" | "popgym:<Name>".
        num_envs: number of parallel copies N (>= 1).
        seed: base seed for the first reset (copy i gets seed + i); None = random.
        vectorization: "sync" (in-process) or "async" (one subprocess per copy).
        **env_args: keyword arguments of the env's constructor (e.g. horizon=20).
    Returns:
        AmagoVecEnv: ``reset() -> (obs, rl2s, time_idxs)``, ``step(actions) -> StepResult``.
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an int or None, got {seed!r}")
    if vectorization not in ("sync", "async"):
        raise ValueError(f"vectorization must be 'sync' or 'async', got {vectorization!r}")
    factory = resolve_env(name, env_args)
    # Build one copy here so bad env_args values fail with the env's own message in
    # this process (not inside an async worker); sync vectorization reuses it.
    try:
        probe = factory(**env_args)
    except TypeError as e:
        raise ValueError(f"env {name!r}: bad env_args {env_args}: {e}") from None
    max_steps = episode_limit(probe)
    hidden = _hidden_obs_keys(probe)  # e.g. MazeRunner's "achieved"
    probe_box = [probe] if vectorization == "sync" else []
    if vectorization == "async":
        probe.close()

    def make_one() -> gym.Env:
        return probe_box.pop() if probe_box else factory(**env_args)

    return AmagoVecEnv(
        [make_one] * num_envs,
        vectorization=vectorization,
        seed=seed,
        name=name,
        max_episode_steps=max_steps,
        hidden_obs_keys=hidden,
    )


def _hidden_obs_keys(env: gym.Env) -> tuple:
    """The env's ``hidden_obs_keys`` through any wrappers (gymnasium 1.x wrappers no
    longer forward attributes; 0.29 warns when they do)."""
    try:
        return tuple(env.get_wrapper_attr("hidden_obs_keys"))
    except AttributeError:
        return ()


def episode_limit(env: gym.Env) -> int | None:
    """An env's episode length limit: its ``max_episode_steps`` attribute (built-ins),
    ``max_episode_length`` (popgym) or its spec's ``max_episode_steps`` (gym ids)."""
    try:  # through the wrappers (an adapter's wrapper may set it), then the base env
        value = env.get_wrapper_attr("max_episode_steps")
    except AttributeError:
        value = None
    if value is None:
        value = getattr(env.unwrapped, "max_episode_length", None)
    if value is None and env.spec is not None:
        value = env.spec.max_episode_steps
    return None if value is None else int(value)

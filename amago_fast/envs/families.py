"""AMAGO's env families behind optional packages, resolved by name (see docs/envs.md).

``popgym-multi``, ``babyai:<Level>``, ``metaworld:ML1-<task>`` / ``ML10`` / ``ML45`` and
``ale:<Game>``; a comma list (``babyai:GoToLocal,PickupLoc``, ``ale:Pong,Breakout``) is a
multi-task env drawing one task per episode (``multitask.TaskSwitcher``). Each package is
imported only when its name is asked for; a missing one is a ValueError naming the extra.
"""

from __future__ import annotations

import importlib
from functools import lru_cache, partial
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .multitask import TaskSwitcher

EnvFactory = Callable[..., gym.Env]


def _need(module: str, name: str, extra: str):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ValueError(
            f"env {name!r} needs the optional {module.split('.')[0]} package: pip install 'amago_fast[{extra}]' ({e})"
        ) from None


def _split(rest: str, name: str) -> list[str]:
    parts = [p.strip() for p in rest.split(",")]
    if not parts or not all(parts):
        raise ValueError(f"env {name!r}: expected <Name> or a comma list <A>,<B>")
    return parts


def _switch_or_single(factories: list[Callable[[], gym.Env]], names: list[str]) -> gym.Env:
    return factories[0]() if len(factories) == 1 else TaskSwitcher(factories, names)


# ---------------------------------------------------------------- POPGym multi-domain

POPGYM_MULTI_DEFAULT = (
    "RepeatPreviousEasy",
    "RepeatFirstEasy",
    "CountRecallEasy",
    "AutoencodeEasy",
    "MultiarmedBanditEasy",
)


def popgym_multi(tasks: str = ",".join(POPGYM_MULTI_DEFAULT)) -> gym.Env:
    """Multi-domain POPGym: one of ``tasks`` (comma list of popgym class names) per episode,
    observations flattened and padded, actions ``Discrete(max n)`` taken modulo each task's."""
    popgym_envs = _need("popgym.envs", "popgym-multi", "popgym")
    classes = {c.__name__: c for c in popgym_envs.ALL}
    names = _split(tasks, "popgym-multi")
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise ValueError(f"env 'popgym-multi': unknown tasks {unknown}; popgym envs: {sorted(classes)}")
    return TaskSwitcher([classes[n] for n in names], names)


# ---------------------------------------------------------------- BabyAI (minigrid)

_BABYAI_WORDS = (
    "go to the a pick up open put next you and then after behind in front of on your left "
    "right red green blue purple yellow grey box ball key door"
).split()
MISSION_LEN = 16


class BabyAIObs(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """BabyAI's dict observation with the mission as word ids: ``image`` (7, 7, 3) uint8,
    ``direction`` one-hot (4,), ``mission`` (16,) int64 (0 = pad, 1 = unknown word)."""

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        image = env.observation_space["image"]
        self.observation_space = spaces.Dict(
            {
                "image": image,
                "direction": spaces.Box(0.0, 1.0, (4,), np.float32),
                "mission": spaces.Box(0, len(_BABYAI_WORDS) + 1, (MISSION_LEN,), np.int64),
            }
        )
        env.reset(seed=0)  # BabyAI levels set their step limit when they generate a mission
        self.max_episode_steps = int(env.unwrapped.max_steps)

    def observation(self, obs: dict) -> dict:
        direction = np.zeros(4, np.float32)
        direction[int(obs["direction"])] = 1.0
        ids = np.zeros(MISSION_LEN, np.int64)
        for i, word in enumerate(obs["mission"].replace(",", " ").split()[:MISSION_LEN]):
            ids[i] = _BABYAI_WORDS.index(word) + 2 if word in _BABYAI_WORDS else 1
        return {"image": obs["image"], "direction": direction, "mission": ids}


class _SuccessOnReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """BabyAI gives reward > 0 only on completing the mission: report it as ``success``."""

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info = {**info, "success": bool(terminated and reward > 0)}
        return obs, reward, terminated, truncated, info


def _babyai_id(level: str) -> str:
    """``GoToLocal`` -> ``BabyAI-GoToLocal-v0``; a level with a version keeps it."""
    return f"BabyAI-{level}" if level.endswith(("-v0", "-v1")) else f"BabyAI-{level}-v0"


def _babyai_one(level: str) -> gym.Env:
    env = gym.make(_babyai_id(level))
    return _SuccessOnReward(BabyAIObs(env))


def _babyai_resolver(rest: str) -> EnvFactory:
    name = f"babyai:{rest}"
    _need("minigrid", name, "babyai")
    levels = _split(rest, name)
    for level in levels:
        if _babyai_id(level) not in gym.registry:
            known = sorted(e[len("BabyAI-") :] for e in gym.registry if e.startswith("BabyAI-"))
            raise ValueError(f"env {name!r}: no BabyAI level {level!r}; levels: {known}")
    return lambda: _switch_or_single([partial(_babyai_one, lv) for lv in levels], levels)


# ---------------------------------------------------------------- Meta-World (3.x)


class MetaWorldTasks(gym.Env):
    """Meta-World ML1/ML10/ML45 train (or test) tasks: each episode one (env class, task)
    drawn uniformly, truncated at the benchmark's ``max_path_length`` (500)."""

    metadata = {"render_modes": []}

    def __init__(self, benchmark: Any, split: str = "train"):
        classes = getattr(benchmark, f"{split}_classes")
        self.tasks = list(getattr(benchmark, f"{split}_tasks"))
        self.envs = {name: cls() for name, cls in classes.items()}
        first = next(iter(self.envs.values()))
        self.observation_space = first.observation_space
        self.action_space = first.action_space
        self.max_episode_steps = int(first.max_path_length)
        self._env, self._task_name = first, self.tasks[0].env_name
        self._t = 0

    @property
    def task_env(self) -> gym.Env:
        """The Meta-World env of the current episode (its goal is hidden from the agent)."""
        return self._env

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        task = self.tasks[int(self.np_random.integers(len(self.tasks)))]
        self._env, self._task_name = self.envs[task.env_name], task.env_name
        self._env.set_task(task)
        obs, info = self._env.reset(seed=int(self.np_random.integers(2**31)))
        self._t = 0
        return obs.astype(np.float64), {**info, "task": task.env_name}

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self._env.step(np.asarray(action, np.float32))
        self._t += 1
        truncated = bool(truncated) or self._t >= self.max_episode_steps
        info = {**info, "task": self._task_name, "success": bool(info.get("success", 0.0) > 0)}
        return obs.astype(np.float64), float(reward), bool(terminated), truncated, info

    def close(self) -> None:
        for env in self.envs.values():
            env.close()


def _metaworld_benchmark(bench: str, task: str, seed: int | None) -> Any:
    """The benchmark object (its task list); with a seed it is built once and shared by
    every copy (building ML10 takes ~45 s on the 2-core box); None draws fresh tasks."""
    if seed is None:
        return _build_benchmark(bench, task, None)
    return _cached_benchmark(bench, task, int(seed))


def _build_benchmark(bench: str, task: str, seed: int | None) -> Any:
    import metaworld

    return metaworld.ML1(task, seed=seed) if bench == "ML1" else getattr(metaworld, bench)(seed=seed)


_cached_benchmark = lru_cache(maxsize=8)(_build_benchmark)


def _metaworld_resolver(rest: str) -> EnvFactory:
    name = f"metaworld:{rest}"
    metaworld = _need("metaworld", name, "metaworld")
    bench, _, task = rest.partition("-")
    split = "train"
    if rest.endswith("-test"):
        rest, split = rest[: -len("-test")], "test"
        bench, _, task = rest.partition("-")
    if (bench == "ML1" and task) or (bench in ("ML10", "ML45") and not task):

        def make(benchmark_seed: int | None = None) -> gym.Env:
            return MetaWorldTasks(_metaworld_benchmark(bench, task, benchmark_seed), split)
    else:
        raise ValueError(
            f"env {name!r}: expected metaworld:ML1-<task>, metaworld:ML10 or "
            "metaworld:ML45 (optionally ending in -test)"
        )
    if bench == "ML1":
        known = sorted(metaworld.ALL_V3_ENVIRONMENTS)
        if task not in known:
            raise ValueError(f"env {name!r}: unknown Meta-World task {task!r}; tasks: {known}")
    return make


# ---------------------------------------------------------------- Atari (ale-py)


class Downsample(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """(210, 160, 3) uint8 Atari frames -> every ``factor``-th pixel (105, 80, 3 at 2)."""

    def __init__(self, env: gym.Env, factor: int = 2):
        gym.utils.RecordConstructorArgs.__init__(self, factor=factor)
        gym.ObservationWrapper.__init__(self, env)
        self.factor = factor
        h, w, c = env.observation_space.shape
        self.observation_space = spaces.Box(0, 255, (-(-h // factor), -(-w // factor), c), np.uint8)

    def observation(self, obs: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(obs[:: self.factor, :: self.factor])


def _ale_one(game: str, frameskip: int = 4, max_episode_steps: int = 10_000) -> gym.Env:
    env = gym.make(
        f"ALE/{game}-v5",
        full_action_space=True,
        frameskip=frameskip,
        repeat_action_probability=0.25,
        max_episode_steps=max_episode_steps,
    )
    return Downsample(env)


def _ale_resolver(rest: str) -> EnvFactory:
    name = f"ale:{rest}"
    ale_py = _need("ale_py", name, "ale")
    if hasattr(gym, "register_envs"):
        gym.register_envs(ale_py)
    games = _split(rest, name)
    for game in games:
        if f"ALE/{game}-v5" not in gym.registry:
            raise ValueError(f"env {name!r}: no Atari game {game!r} (ids look like ALE/<Game>-v5)")

    def make(frameskip: int = 4, max_episode_steps: int = 10_000) -> gym.Env:
        fns = [partial(_ale_one, g, frameskip, max_episode_steps) for g in games]
        return _switch_or_single(fns, games)

    return make


def register_families(register_env: Callable, register_prefix: Callable) -> None:
    """Register every family name with the registry (called once by ``envs/__init__``)."""
    register_env("popgym-multi", popgym_multi)
    register_prefix("babyai", _babyai_resolver, "babyai:<Level>[,<Level>...]")
    register_prefix("metaworld", _metaworld_resolver, "metaworld:ML1-<task> | ML10 | ML45")
    register_prefix("ale", _ale_resolver, "ale:<Game>[,<Game>...]")

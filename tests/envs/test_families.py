"""AMAGO's env families: meta-frozen-lake, half-cheetah-vel, popgym-multi, babyai:, ale:,
metaworld:. Each: gymnasium's env checker, seeded determinism through make_env, and a
scripted policy whose return differs from a random one. Optional packages skip cleanly."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from amago_fast.envs import available_envs, make_env, resolve_env
from amago_fast.envs.meta_frozen_lake import MetaFrozenLake, shortest_path


def _rollout(name, steps, actions, seed=0, **env_args):
    """(stacked obs, rewards) of one copy under a fixed action sequence."""
    env = make_env(name, num_envs=1, seed=seed, **env_args)
    obs, _, _ = env.reset()
    seen, rews = [obs], []
    for t in range(steps):
        res = env.step(actions[t : t + 1])
        seen.append(res.next_obs)
        rews.append(res.rews[0])
    env.close()
    return {k: np.stack([o[k] for o in seen]) for k in seen[0]}, np.array(rews)


def _assert_deterministic(name, steps, actions, **env_args):
    obs_a, rew_a = _rollout(name, steps, actions, seed=5, **env_args)
    obs_b, rew_b = _rollout(name, steps, actions, seed=5, **env_args)
    obs_c, _ = _rollout(name, steps, actions, seed=6, **env_args)
    for k in obs_a:
        np.testing.assert_array_equal(obs_a[k], obs_b[k])
    np.testing.assert_array_equal(rew_a, rew_b)
    assert any(not np.array_equal(obs_a[k], obs_c[k]) for k in obs_a), "seed has no effect"


def test_every_family_is_listed():
    names = available_envs()
    for n in ("meta-frozen-lake", "half-cheetah-vel", "popgym-multi"):
        assert n in names
    for prefix in ("babyai:", "metaworld:", "ale:"):
        assert any(n.startswith(prefix) for n in names)


# ------------------------------------------------------------------ meta-frozen-lake


def test_meta_frozen_lake_passes_the_env_checker():
    check_env(MetaFrozenLake(size=4, k_attempts=3), skip_render_check=True)


def test_meta_frozen_lake_is_seeded():
    _assert_deterministic("meta-frozen-lake", 60, np.random.default_rng(0).integers(0, 5, 60), size=4, k_attempts=3)


@pytest.mark.parametrize(
    "bad", [dict(size=1), dict(k_attempts=0), dict(hole_prob=0.9), dict(attempt_steps=0), dict(size=2.5)]
)
def test_meta_frozen_lake_bad_args_name_the_argument(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        MetaFrozenLake(**bad)


def _lake_trial(policy: str, seed: int) -> int:
    """Goals reached in one trial: 'memory' explores on attempt 1 then walks the shortest
    path (knowing the layout stands in for remembering it); 'random' acts uniformly."""
    env = MetaFrozenLake(size=5, k_attempts=5, hole_prob=0.3)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    path, goals, done, i = shortest_path(env.holes), 0, False, 0
    while not done:
        if policy == "random" or env._attempt == 0:
            a = int(rng.integers(5))
        else:
            a, i = path[i], i + 1
        obs, r, done, _, info = env.step(a)
        goals += int(r > 0)
        if obs[2] == 1.0:  # a new attempt starts at the start cell
            i = 0
    assert info["goals"] == goals
    return goals


def test_meta_frozen_lake_rewards_exploiting_a_remembered_path():
    memory = [_lake_trial("memory", s) for s in range(20)]
    random = [_lake_trial("random", s) for s in range(20)]
    assert min(memory) >= 4  # every attempt after the first reaches the goal
    assert np.mean(random) < 1.0 < np.mean(memory) - 2


# ------------------------------------------------------------------ half-cheetah-vel


def test_half_cheetah_vel():
    pytest.importorskip("mujoco", reason="half-cheetah-vel needs mujoco (extra 'mujoco')")
    from amago_fast.envs import HalfCheetahVel

    check_env(HalfCheetahVel(k_episodes=1, episode_steps=20), skip_render_check=True)
    _assert_deterministic(
        "half-cheetah-vel", 30, np.random.default_rng(0).uniform(-1, 1, (30, 6)), k_episodes=2, episode_steps=15
    )
    env = HalfCheetahVel(k_episodes=2, episode_steps=50)
    targets = {env.reset(seed=s)[1]["target_velocity"] for s in range(4)}
    assert len(targets) == 4 and all(0.0 <= t <= 3.0 for t in targets)

    def trial(policy, target):
        obs, info = env.reset(seed=1, options={"target_velocity": target})
        rng, ret, done, starts = np.random.default_rng(1), 0.0, False, []
        while not done:
            a = np.zeros(6, np.float32) if policy == "still" else rng.uniform(-1, 1, 6)
            obs, r, done, _, info = env.step(a)
            assert info["target_velocity"] == target  # kept across the trial's episodes
            starts.append(obs[-1])
            ret += r
        assert sum(starts) == 2  # two episodes, physics reset at step 50
        return ret

    # target 0: standing still beats flailing (velocity error and control cost)
    assert trial("still", 0.0) > trial("random", 0.0) + 5
    # the target changes the reward: standing still is penalised |0 - 3| per step
    assert trial("still", 3.0) < trial("still", 0.0) - 100


# ------------------------------------------------------------------ popgym-multi


def test_popgym_multi_domain():
    pytest.importorskip("popgym", reason="popgym-multi needs popgym (extra 'popgym')")
    from amago_fast.envs.families import popgym_multi

    env = popgym_multi("RepeatPreviousEasy,CountRecallEasy")
    check_env(env, skip_render_check=True)
    assert env.action_space.n == 27  # CountRecall's; RepeatPrevious gets a % 4
    tasks = {env.reset(seed=s)[1]["task"] for s in range(10)}
    assert tasks == {"RepeatPreviousEasy", "CountRecallEasy"}
    _assert_deterministic("popgym-multi", 60, np.random.default_rng(0).integers(0, 27, 60))
    with pytest.raises(ValueError, match="unknown tasks"):
        popgym_multi("NoSuchEnv")

    def ret(policy, seed):  # RepeatPrevious: repeat the card seen k steps ago
        e = popgym_multi("RepeatPreviousEasy")
        obs, _ = e.reset(seed=seed)
        hist, total, done, rng = [obs], 0.0, False, np.random.default_rng(seed)
        while not done:
            k = e.envs[0].k  # the card k steps back is the right answer
            a = int(hist[-k]) if policy == "memory" and len(hist) >= k else int(rng.integers(4))
            obs, r, term, trunc, _ = e.step(a)
            hist.append(obs)
            total, done = total + r, term or trunc
        return total

    assert ret("memory", 0) > ret("random", 0) + 0.3


# ------------------------------------------------------------------ BabyAI


def test_babyai_single_and_multitask():
    pytest.importorskip("minigrid", reason="babyai: needs minigrid (extra 'babyai')")
    from minigrid.utils.baby_ai_bot import BabyAIBot

    factory = resolve_env("babyai:GoToRedBallNoDists")
    check_env(factory(), skip_render_check=True)
    env = make_env("babyai:GoToLocal,PickupLoc", num_envs=2, seed=0)
    obs, _, _ = env.reset()
    assert obs["image"].dtype == np.uint8 and obs["image"].shape == (2, 7, 7, 3)
    assert obs["mission"].shape == (2, 16) and (obs["mission"][:, 0] > 1).all()  # known words
    assert env.max_episode_steps == 64
    env.close()
    _assert_deterministic("babyai:GoToLocal,PickupLoc", 30, np.random.default_rng(0).integers(0, 7, 30))
    with pytest.raises(ValueError, match="no BabyAI level"):
        resolve_env("babyai:NoSuchLevel")

    def success(policy, seed):
        e = factory()
        e.reset(seed=seed)
        bot, rng, done = BabyAIBot(e.unwrapped), np.random.default_rng(seed), False
        while not done:
            a = bot.replan() if policy == "bot" else int(rng.integers(7))
            _, _, term, trunc, info = e.step(a)
            done = term or trunc
        return info["success"]

    assert sum(success("bot", s) for s in range(5)) == 5
    assert sum(success("random", s) for s in range(5)) < 5


# ------------------------------------------------------------------ Atari


def test_ale_single_and_multigame():
    pytest.importorskip("ale_py", reason="ale: needs ale-py (extra 'ale')")
    factory = resolve_env("ale:Breakout")
    check_env(factory(max_episode_steps=50), skip_render_check=True)
    env = make_env("ale:Pong,Breakout", num_envs=1, seed=0, max_episode_steps=100)
    obs, _, _ = env.reset()
    assert obs["observation"].shape == (1, 105, 80, 3) and obs["observation"].dtype == np.uint8
    assert env.action_space.n == 18  # the full action set, shared by every game
    env.close()
    _assert_deterministic("ale:Breakout", 40, np.random.default_rng(0).integers(0, 18, 40), max_episode_steps=100)
    with pytest.raises(ValueError, match="no Atari game"):
        resolve_env("ale:NoSuchGame")

    def ret(policy):
        e = factory(max_episode_steps=400)
        e.reset(seed=0)
        rng, total, done = np.random.default_rng(0), 0.0, False
        while not done:
            a = 0 if policy == "noop" else int(rng.integers(18))  # Breakout needs FIRE to serve
            _, r, term, trunc, _ = e.step(a)
            total, done = total + r, term or trunc
        return total

    assert ret("noop") == 0.0 < ret("random")


def test_image_obs_reach_the_cnn_timestep_encoder():
    pytest.importorskip("ale_py", reason="ale: needs ale-py (extra 'ale')")
    import torch

    from amago_fast.nets.tstep import TstepEncoder

    env = make_env("ale:Breakout", num_envs=1, seed=0, max_episode_steps=10)
    obs, rl2s, _ = env.reset()
    enc = TstepEncoder(env.observation_space, 1 + env.action_dim, d_hidden=32, d_out=16)
    assert list(enc.cnns) == ["observation"]  # the (105, 80, 3) uint8 frame goes to the CNN
    out = enc({k: torch.as_tensor(v)[:, None] for k, v in obs.items()}, torch.as_tensor(rl2s)[:, None])
    assert out.shape == (1, 1, 16) and torch.isfinite(out).all()
    env.close()


# ------------------------------------------------------------------ Meta-World


def test_metaworld_ml1():
    pytest.importorskip("metaworld", reason="metaworld: needs metaworld 3.x (extra 'metaworld')")
    import metaworld.policies as policies

    factory = resolve_env("metaworld:ML1-reach-v3")
    env = factory(benchmark_seed=0)
    assert env.max_episode_steps == 500
    with pytest.raises(ValueError, match="unknown Meta-World task"):
        resolve_env("metaworld:ML1-no-such-v3")
    with pytest.raises(ValueError, match="expected metaworld:ML1"):
        resolve_env("metaworld:ML7")
    _assert_deterministic(
        "metaworld:ML1-reach-v3", 20, np.random.default_rng(0).uniform(-1, 1, (20, 4)), benchmark_seed=0
    )

    def success(policy, seed):
        obs, _ = env.reset(seed=seed)
        expert, rng = policies.SawyerReachV3Policy(), np.random.default_rng(seed)
        np.testing.assert_array_equal(obs[-3:], 0.0)  # ML1 hides the goal: meta-RL
        for _ in range(150):
            shown = np.concatenate([obs[:-3], env.task_env._target_pos])  # the oracle sees it
            a = expert.get_action(shown) if policy == "expert" else rng.uniform(-1, 1, 4)
            obs, _, _, _, info = env.step(np.clip(a, -1, 1))
            if info["success"]:
                return True
        return False

    assert success("expert", 0) and success("expert", 1)
    assert not (success("random", 0) and success("random", 1))


@pytest.mark.slow
@pytest.mark.parametrize("bench,n_classes", [("ML10", 10), ("ML45", 45)])
def test_metaworld_ml10_ml45_draw_every_train_class(bench, n_classes):
    pytest.importorskip("metaworld", reason="metaworld: needs metaworld 3.x (extra 'metaworld')")
    env = resolve_env(f"metaworld:{bench}")(benchmark_seed=0)
    assert len(env.envs) == n_classes
    seen = {env.reset(seed=s)[1]["task"] for s in range(8 * n_classes)}
    assert len(seen) > n_classes // 2
    obs, r, term, trunc, info = env.step(env.action_space.sample())
    assert obs.shape == env.observation_space.shape and info["task"] in env.envs


_TINY = {
    "trainer": {
        "num_envs": 2,
        "collect_steps": 8,
        "grad_steps_per_round": 2,
        "learning_starts": 16,
        "batch_size": 4,
        "eval_every": 32,
        "eval_episodes": 2,
        "eval_envs": 2,
        "checkpoint_every": 32,
    },
    "agent": {
        "d_model": 16,
        "n_heads": 2,
        "n_layers": 1,
        "d_ff": 32,
        "tstep_dim": 8,
        "tstep_hidden": 16,
        "head_hidden": 16,
    },
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "env,args,package",
    [
        ("meta-frozen-lake", ["size=3", "k_attempts=2"], None),
        ("half-cheetah-vel", ["k_episodes=1", "episode_steps=10"], "mujoco"),
        ("popgym-multi", [], "popgym"),
        ("babyai:GoToRedBallNoDists", [], "minigrid"),
    ],
    ids=["meta-frozen-lake", "half-cheetah-vel", "popgym-multi", "babyai"],
)
def test_family_trains_through_the_cli(tmp_path, env, args, package):
    """The whole stack (collection, replay, agent, eval) runs on the family's spaces."""
    import json
    import subprocess
    import sys

    if package:
        pytest.importorskip(package, reason=f"{env} needs {package}")
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(_TINY))
    cmd = [
        sys.executable,
        "-m",
        "amago_fast",
        "train",
        "--env",
        env,
        "--total-steps",
        "32",
        "--run-dir",
        str(tmp_path / "run"),
        "--config",
        str(cfg),
        "--seed",
        "0",
        "--no-progress",
    ]
    for a in args:
        cmd += ["--env-arg", a]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["env_steps"] == 32

"""The generated CLI as a user types it (subprocesses): every config field a flag with its
docstring, presets, --version, custom envs, and one-line errors for the usual mistakes."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from amago_fast.agent import AgentConfig
from amago_fast.cli_config import field_docs
from amago_fast.trainer import TrainerConfig

TINY_FLAGS = [
    "--num-envs",
    "2",
    "--collect-steps",
    "8",
    "--grad-steps-per-round",
    "2",
    "--learning-starts",
    "16",
    "--batch-size",
    "4",
    "--eval-every",
    "0",
    "--eval-episodes",
    "2",
    "--eval-envs",
    "2",
    "--checkpoint-every",
    "32",
    "--d-model",
    "16",
    "--n-heads",
    "2",
    "--n-layers",
    "1",
    "--d-ff",
    "32",
    "--tstep-dim",
    "8",
    "--tstep-hidden",
    "16",
    "--head-hidden",
    "16",
    "--no-progress",
]


def _run(*args, cwd, extra_path=None):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("AMAGO_FAST_DEBUG", None)
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "amago_fast", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def _one_line_error(r, *needles):
    assert r.returncode in (1, 2), (r.returncode, r.stdout, r.stderr)
    err = r.stderr.strip()
    assert "Traceback" not in err and "\n" not in err, err
    for n in needles:
        assert n in err, err


def test_every_config_field_is_a_flag_with_its_docstring(tmp_path):
    r = _run("train", "--help", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split()).replace("- ", "-")  # undo argparse's line wrapping
    for cls in (TrainerConfig, AgentConfig):
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            flag = "--" + f.name.replace("_", "-")
            assert re.search(rf"(^|[\s\[]){re.escape(flag)}[\s\]]", r.stdout), flag
            assert docs.get(f.name), f"{cls.__name__}.{f.name} has no docstring"
            assert " ".join(docs[f.name].split())[:40].replace("- ", "-") in text, f.name
    assert "--preset" in r.stdout and "tmaze20" in r.stdout


def test_field_docs_reads_the_string_below_each_field():
    @dataclasses.dataclass
    class C:
        a: int = 1
        """First field."""
        b: str = "x"
        c: float = 0.5
        """Spans
        two lines."""

    assert field_docs(C) == {"a": "First field.", "c": "Spans two lines."}


def test_version_is_the_package_version(tmp_path):
    import amago_fast

    r = _run("--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == f"amago-fast {amago_fast.__version__}"
    # instant: --version does not import torch (seconds on a loaded box)
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from amago_fast.cli import main; main(['--version']); print('torch' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 0 and r.stdout.split()[-1] == "False", r.stdout + r.stderr


def test_preset_and_flags_layer_into_the_saved_config(tmp_path):
    run = tmp_path / "run"
    r = _run(
        "train",
        "--preset",
        "tmaze20",
        "--run-dir",
        run,
        *TINY_FLAGS,
        "--total-steps",
        "16",
        "--env-arg",
        "horizon=4",
        "--no-context-from-env",
        "--max-seq-len",
        "6",
        "--gammas",
        "0.9,0.99",
        "--lr",
        "1e-3",
        "--eps-end",
        "0.2",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    saved = json.loads((run / "config.json").read_text())
    t, a = saved["trainer"], saved["agent"]
    assert t["env"] == "tmaze" and t["env_args"] == {"horizon": 4}  # preset env, flag overrides its argument
    assert t["eps_anneal_steps"] == 10_000  # from the preset, not the dataclass
    assert t["context_from_env"] is False and t["eps_end"] == 0.2 and t["num_envs"] == 2
    assert a["max_seq_len"] == 6 and a["gammas"] == [0.9, 0.99] and a["lr"] == 1e-3 and a["d_model"] == 16
    assert a["warmup"] == 200  # the CPU agent under the flags
    assert "context max_seq_len" not in r.stderr  # not auto-sized: no message


def test_auto_sized_context_is_reported(tmp_path):
    r = _run(
        "train",
        "--env",
        "tmaze",
        "--env-arg",
        "horizon=3",
        "--run-dir",
        tmp_path / "run",
        *TINY_FLAGS,
        "--total-steps",
        "16",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "context max_seq_len=5 tokens (was 128)" in r.stderr and "episode limit is 4 steps" in r.stderr


MY_ENVS = textwrap.dedent('''
    """A user's own env module: registers a gymnasium id and an amago_fast name."""
    import gymnasium as gym
    import numpy as np

    from amago_fast.envs import register_env


    class Corridor(gym.Env):
        """Walk right 3 cells; reward 1 at the end."""
        observation_space = gym.spaces.Box(0, 3, (1,), np.float32)
        action_space = gym.spaces.Discrete(2)

        def reset(self, seed=None, options=None):
            super().reset(seed=seed)
            self.pos = 0
            return np.array([0.0], np.float32), {}

        def step(self, action):
            self.pos = max(0, self.pos + (1 if action == 1 else -1))
            done = self.pos >= 3
            return np.array([self.pos], np.float32), float(done), done, False, {}


    gym.register("MyCorridor-v0", entry_point=Corridor, max_episode_steps=6)
    register_env("my-corridor", lambda: gym.wrappers.TimeLimit(Corridor(), 6))
''')


@pytest.mark.parametrize("how", ["gym_module_id", "env_module"])
def test_custom_env_from_the_command_line(tmp_path, how):
    (tmp_path / "my_envs.py").write_text(MY_ENVS)
    run = tmp_path / "run"
    env_flags = (
        ["--env", "gym:my_envs:MyCorridor-v0"]
        if how == "gym_module_id"
        else ["--env", "my-corridor", "--env-module", "my_envs"]
    )
    r = _run(
        "train", *env_flags, "--run-dir", run, *TINY_FLAGS, "--total-steps", "32", cwd=tmp_path, extra_path=tmp_path
    )
    assert r.returncode == 0, r.stderr
    saved = json.loads((run / "config.json").read_text())["trainer"]
    assert saved["env_modules"] == ([] if how == "gym_module_id" else ["my_envs"])
    r = _run("eval", "--run-dir", run, "--episodes", "2", cwd=tmp_path, extra_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["episodes"] == 2


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from amago_fast.trainer import Trainer

    run = tmp_path_factory.mktemp("cli") / "run"
    cfg = TrainerConfig(
        env="tmaze",
        env_args={"horizon": 3},
        num_envs=2,
        collect_steps=8,
        grad_steps_per_round=2,
        learning_starts=16,
        batch_size=4,
        eval_every=0,
        eval_episodes=2,
        eval_envs=2,
        checkpoint_every=32,
        total_steps=32,
        progress=False,
    )
    tr = Trainer(
        run, cfg, AgentConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, tstep_dim=8, tstep_hidden=16, head_hidden=16)
    )
    tr.run()
    tr.close()
    return run


def _truncated_copy(run, dest, which="latest"):
    from amago_fast.trainer.checkpoint import complete_checkpoints

    shutil.copytree(run, dest)
    ckpts = complete_checkpoints(dest / "checkpoints")
    assert len(ckpts) >= 2
    for ckpt in ckpts[-1:] if which == "latest" else ckpts:
        weights = ckpt / "weights.safetensors"
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
    return dest, ckpts


def test_truncated_weights_are_one_line_errors(tmp_path, trained_run):
    run, _ = _truncated_copy(trained_run, tmp_path / "damaged", which="all")
    _one_line_error(_run("eval", "--run-dir", run, "--episodes", "2", cwd=tmp_path), "damaged or truncated")
    _one_line_error(
        _run("train", "--run-dir", run, "--resume", "--total-steps", "64", "--no-progress", cwd=tmp_path),
        "damaged or truncated",
    )


def test_a_damaged_latest_checkpoint_is_named_and_skipped(tmp_path, trained_run):
    run, ckpts = _truncated_copy(trained_run, tmp_path / "damaged", which="latest")
    r = _run("eval", "--run-dir", run, "--episodes", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["checkpoint"] == ckpts[-2].name
    assert f"skipping damaged checkpoint {ckpts[-1]}" in r.stderr


def test_run_config_without_trainer_section(tmp_path, trained_run):
    run = tmp_path / "noconf"
    shutil.copytree(trained_run, run)
    saved = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({"agent": saved["agent"]}))
    _one_line_error(_run("eval", "--run-dir", run, cwd=tmp_path), "no 'trainer' section")
    _one_line_error(_run("train", "--run-dir", run, "--resume", "--no-progress", cwd=tmp_path), "no 'trainer' section")


def _box2d_installed():
    try:
        import Box2D  # noqa: F401

        return True
    except ImportError:
        return False


def _cuda():
    import torch

    return torch.cuda.is_available()


ERRORS = {
    "cuda_on_cpu_torch": (["--device", "cuda"], ["--device cuda", "use --device cpu"]),
    "tpu": (["--device", "tpu"], ["--device 'tpu'", "cpu or cuda"]),
    "missing_box2d": (["--env", "gym:LunarLander-v3"], ["Box2D is not installed"]),
    "unknown_env": (["--env", "no-such-env"], ["unknown env 'no-such-env'", "available"]),
    "unknown_gym_id": (["--env", "gym:NoSuchEnv-v0"], ["gym:NoSuchEnv-v0"]),
    "missing_env_module": (["--env-module", "no_such_module"], ["--env-module no_such_module"]),
    "missing_gym_module": (["--env", "gym:no_such_module:X-v0"], ["cannot import module 'no_such_module'"]),
    "flat_config": (["--config", "FLAT"], ["top-level keys must be 'trainer' and/or 'agent'"]),
    "bad_value": (["--pos-emb", "bogus"], ["pos_emb"]),
    "bad_type": (["--total-steps", "many"], ["--total-steps", "expected int"]),
}


def test_train_mistakes_are_one_line_errors(tmp_path):
    """Each mistake in its own `amago-fast train` process (started together: the cost is
    the interpreter start-up)."""
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"env": "tmaze", "total_steps": 16}))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("AMAGO_FAST_DEBUG", None)
    procs = {}
    for case, (args, needles) in sorted(ERRORS.items()):
        if (case == "cuda_on_cpu_torch" and _cuda()) or (case == "missing_box2d" and _box2d_installed()):
            continue
        args = [str(flat) if a == "FLAT" else a for a in args]
        cmd = [sys.executable, "-m", "amago_fast", "train", "--run-dir", str(tmp_path / case), *args]
        procs[case] = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env
        )
    assert len(procs) >= len(ERRORS) - 2
    for case, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        _one_line_error(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), *ERRORS[case][1])
        assert not (tmp_path / case / "checkpoints").exists(), case


def test_plot_on_a_missing_dir_and_eval_device(tmp_path, trained_run):
    _one_line_error(_run("plot", tmp_path / "nowhere", cwd=tmp_path), "no run directory")
    _one_line_error(_run("eval", "--run-dir", trained_run, "--device", "tpu", cwd=tmp_path), "tpu")


def test_ctrl_c_after_the_first_update_saves_and_eval_works(tmp_path):
    """The README's promise: interrupt `train` at any point after the first update and
    `eval` still has a checkpoint; the interrupt is one line and exit code 130."""
    import signal
    import time

    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("AMAGO_FAST_DEBUG", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amago_fast",
            "train",
            "--env",
            "tmaze",
            "--env-arg",
            "horizon=3",
            "--run-dir",
            str(run),
            *TINY_FLAGS,
            "--total-steps",
            "100000",
            "--checkpoint-every",
            "0",
            "--checkpoint-interval-s",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            lines = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").exists() else []
            if any(json.loads(x).get("grad_steps", 0) > 0 for x in lines if x.strip().endswith("}")):
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert re.search(r"amago-fast train: interrupted at step \d+; checkpoint saved to ", err.strip().splitlines()[-1])
    r = _run("eval", "--run-dir", run, "--episodes", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["episodes"] == 2


def test_resume_and_eval_without_any_checkpoint(tmp_path, trained_run):
    run = tmp_path / "nockpt"
    shutil.copytree(trained_run, run)
    shutil.rmtree(run / "checkpoints")
    _one_line_error(_run("eval", "--run-dir", run, cwd=tmp_path), "no checkpoint yet")
    _one_line_error(
        _run("train", "--run-dir", run, "--resume", "--no-progress", cwd=tmp_path), "no complete checkpoint"
    )

"""SIGKILL at every step of ReplayBuffer.save, and at seeded random times: the directory
then loads as the previous snapshot or the new one, never a mix, and what a killed save
left behind is swept. Also: a save that fails (EFBIG from RLIMIT_FSIZE, a failing write)
leaves no temp directory (issue 10, row G) and the previous snapshot intact.

One child process runs the matrix (pytest never sees a crash); it forks one writer per
kill point, so the package is imported once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from amago_fast import ReplayBuffer
from amago_fast.replay import persist

CHILD = textwrap.dedent(r"""
    import hashlib, json, os, random, signal, sys, threading, time, warnings
    import numpy as np
    from amago_fast import ReplayBuffer
    from amago_fast.replay import _npy, persist

    snap, fallback = sys.argv[1], sys.argv[2] == "fallback"

    gens = {}
    def generation(g):
        # A deterministic buffer per generation: g decides the content and the ring state.
        # Built once, here; the forked writers inherit it.
        if g in gens:
            return gens[g]
        rng = np.random.default_rng(g)
        buf = ReplayBuffer({"x": ((64,), np.float32)}, 2, capacity=900, protected_capacity=100, seed=g)
        for i in range(12 + g % 5):
            T = int(rng.integers(5, 90))
            buf.add_trajectory({"x": rng.normal(size=(T + 1, 64)).astype(np.float32)},
                               rng.normal(size=(T + 1, 3)).astype(np.float32), np.arange(T + 1),
                               rng.normal(size=(T, 2)).astype(np.float32), rng.normal(size=T),
                               rng.random(T) < 0.1, protected=i == 3)
        buf.sample(4, 8)
        gens[g] = buf
        return buf

    def digest(buf):
        h = hashlib.sha256()
        for i in buf.trajectory_ids().tolist():
            t = buf.trajectory(i)
            h.update(str(i).encode() + t["obs"]["x"].tobytes())
            for k in ("rl2s", "time_idxs", "actions", "rews", "dones"):
                h.update(t[k].tobytes())
        h.update(repr(buf._store.rng_state).encode())
        return h.hexdigest()

    class Counting:
        # Stands in for a module (os, shutil, json) or the native store: every call of a
        # listed function is one step; at step `kill_at` the process SIGKILLs itself.
        def __init__(self, inner, names, state):
            self._inner, self._names, self._state = inner, names, state
        def __getattr__(self, name):
            fn = getattr(self._inner, name)
            if name not in self._names:
                return fn
            def step(*a, **k):
                self._state["n"] += 1
                if self._state["n"] == self._state["kill_at"]:
                    os.kill(os.getpid(), signal.SIGKILL)
                return fn(*a, **k)
            return step

    def instrument(buf, kill_at):
        state = {"n": 0, "kill_at": kill_at}
        persist.os = Counting(os, {"open", "pwrite", "fsync", "rename", "close"}, state)
        _npy.os = Counting(os, {"fsync", "preadv"}, state)
        persist.shutil = Counting(persist.shutil, {"rmtree"}, state)
        persist.json = Counting(json, {"dump"}, state)
        buf._store = Counting(buf._store, {"snapshot"}, state)
        ex = (lambda a, b: False) if fallback else persist._exchange
        persist._exchange = Counting(type("X", (), {"f": staticmethod(ex)}), {"f"}, state).f
        return state

    def save_in_child(g, kill_at=0, delay=None):
        # Save generation g in a forked writer: (killed?, steps it took if it finished).
        buf = generation(g)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            state = instrument(buf, kill_at)
            if delay is not None:
                threading.Timer(delay, os.kill, (os.getpid(), signal.SIGKILL)).start()
            persist.save_buffer(buf, snap)
            os.write(w, str(state["n"]).encode())
            os._exit(0)
        os.close(w)
        with os.fdopen(r) as fh:
            steps = fh.read()
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        assert killed or os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        return killed, int(steps) if steps else None

    digests = {}
    def want(g):
        if g not in digests:
            digests[g] = digest(generation(g))
        return digests[g]

    persist.save_buffer(generation(0), snap)
    t0 = time.perf_counter()
    _, steps = save_in_child(1)  # a dry run counts the steps of one save
    duration = time.perf_counter() - t0
    print("steps", steps, flush=True)
    cur = 1
    first = 1 if not fallback else steps - 6  # the fallback differs only in the swap
    plan = [("step", k, None) for k in range(first, steps + 2)]  # steps + 1: not killed
    r = random.Random(int(sys.argv[3]))
    plan += [("time", 0, r.uniform(0, duration)) for _ in range(4)]
    for kind, k, delay in plan:
        killed, _ = save_in_child(cur + 1, k, delay)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = digest(ReplayBuffer.load(snap))  # verify=True
        state = "old" if got == want(cur) else "new" if got == want(cur + 1) else "MIXED"
        cur += state == "new"
        left = sorted(p for p in os.listdir(os.path.dirname(snap)) if p != os.path.basename(snap))
        print(json.dumps({"kind": kind, "k": k, "killed": killed, "state": state, "left": left}),
              flush=True)
""")


@pytest.mark.parametrize("mode", ["exchange", "fallback"])
def test_sigkill_at_every_step_of_save(tmp_path, mode):
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "snap"), mode, "7"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    rows = [json.loads(ln) for ln in lines if ln.startswith("{")]
    steps = int(next(ln for ln in lines if ln.startswith("steps")).split()[1])
    assert steps >= 20  # opens, the native copy, fsyncs, the manifest, the swap
    assert all(r["state"] in ("old", "new") for r in rows), [r for r in rows if r["state"] == "MIXED"]
    steps_killed = [r for r in rows if r["kind"] == "step" and r["killed"]]
    assert len(steps_killed) == (steps if mode == "exchange" else 7), "a kill at every step"
    assert {r["state"] for r in steps_killed} == {"old", "new"}, "kills before and after the swap"
    # the load right after each kill already swept what the dead writer left
    assert all(r["left"] == [] for r in rows), [r["left"] for r in rows if r["left"]]


def _buffer(lengths) -> ReplayBuffer:
    buf = ReplayBuffer({"x": ((3,), np.float32)}, 1, capacity=1000)
    for T in lengths:
        buf.add_trajectory(
            {"x": np.ones((T + 1, 3), np.float32)},
            np.zeros((T + 1, 2), np.float32),
            np.arange(T + 1),
            np.zeros((T, 1), np.float32),
            np.zeros(T),
            np.zeros(T, bool),
        )
    return buf


FSIZE_CHILD = textwrap.dedent("""
    import os, resource, sys
    import numpy as np
    from amago_fast import ReplayBuffer
    buf = ReplayBuffer({"x": ((256,), np.float32)}, 1, capacity=5000)
    T = 2000
    buf.add_trajectory({"x": np.ones((T + 1, 256), np.float32)}, np.zeros((T + 1, 2), np.float32),
                       np.arange(T + 1), np.zeros((T, 1), np.float32), np.zeros(T), np.zeros(T, bool))
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    try:
        buf.save(sys.argv[1])
        print("saved")
    except OSError as e:
        print("OSError", e.errno)
""")


def test_failed_save_removes_its_temp_dir_efbig(tmp_path):
    buf = _buffer([10, 20])
    buf.save(tmp_path / "snap")  # the previous snapshot, small
    proc = subprocess.run(
        [sys.executable, "-c", FSIZE_CHILD, str(tmp_path / "snap")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["OSError", "27"]  # EFBIG: 2 MB of rows, a 1 MiB limit
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"]
    assert ReplayBuffer.load(tmp_path / "snap").num_timesteps == 30


@pytest.mark.parametrize("where", ["index", "manifest", "swap"])
def test_failed_save_removes_its_temp_dir(tmp_path, monkeypatch, where):
    buf = _buffer([10, 20])
    buf.save(tmp_path / "snap")
    buf2 = _buffer([5, 6, 7])

    def fail(*a, **k):
        raise OSError(28, "No space left on device (injected)")

    if where == "index":
        monkeypatch.setattr(persist._npy, "write_npy", fail)
    elif where == "manifest":
        monkeypatch.setattr(persist.json, "dump", fail)
    else:
        monkeypatch.setattr(persist, "_exchange", lambda a, b: False)
        real = os.rename

        def rename(a, b):  # the second rename of the fallback path fails
            if ".tmp-" in str(a):
                fail()
            return real(a, b)

        monkeypatch.setattr(persist.os, "rename", rename)
    with pytest.raises(OSError, match="injected"):
        buf2.save(tmp_path / "snap")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"]
    assert ReplayBuffer.load(tmp_path / "snap").num_timesteps == 30  # the previous one, intact


def test_stale_temp_dirs_of_dead_writers_are_swept_on_load(tmp_path):
    buf = _buffer([10])
    buf.save(tmp_path / "snap")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    for kind in ("tmp", "old"):
        (tmp_path / f"snap.{kind}-{dead}").mkdir()
        (tmp_path / f"snap.{kind}-{dead}" / "fifo-00.npy").write_bytes(b"half")
    (tmp_path / "snap.tmp-notapid").mkdir()  # not ours: left alone
    live = tmp_path / f"snap.tmp-{os.getpid()}"  # our own pid: a save of ours may be running
    ReplayBuffer.load(tmp_path / "snap")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap", "snap.tmp-notapid"]
    assert not live.exists()

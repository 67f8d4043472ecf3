"""Bounded hypothesis fuzz of every pybind entry point of amago_fast._C and of the
snapshot loader. Run by benchmarks/sanitize_native.sh under ASan+UBSan: any call may
raise a Python exception, none may touch memory it does not own (the sanitizer aborts
the process) or crash.

    python benchmarks/sanitize_fuzz.py --seconds 60
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amago_fast import _C, ReplayBuffer
from amago_fast.replay import persist

OK = (ValueError, TypeError, IndexError, RuntimeError, OverflowError, MemoryError, KeyError)
SETTINGS = settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
# small sizes mostly, plus values that overflow naive size arithmetic
ints = st.one_of(st.integers(-3, 40), st.sampled_from([2**31, 2**32 + 1, 2**62, 2**63 - 1, -(2**63)]))
DTYPES = [np.uint8, np.int32, np.int64, np.float32, np.float64, np.bool_]


def arrays(draw, max_rows=12):
    dt = draw(st.sampled_from(DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, max_rows), min_size=0, max_size=3)))
    a = np.zeros(shape, dt)
    if draw(st.booleans()) and a.ndim >= 1 and a.shape[-1] > 1:
        a = a[..., ::2]  # non-contiguous
    return a


@st.composite
def array_st(draw):
    return arrays(draw)


def call(fn, *args):
    try:
        return fn(*args)
    except OK:
        return None


@st.composite
def store_ops(draw):
    F = draw(st.integers(1, 4))
    row_bytes = [draw(st.integers(1, 16)) for _ in range(F)]
    obs_like = [draw(st.booleans()) for _ in range(F)]
    obs_like[-1] = False  # keep at least one transition field most of the time
    cap = draw(st.integers(1, 60))
    rows = cap + 1 + draw(st.integers(0, 40))
    pcap = draw(st.sampled_from([0, 0, draw(st.integers(1, 30))]))
    return (
        row_bytes,
        obs_like,
        cap,
        rows,
        pcap,
        draw(st.lists(st.tuples(st.integers(0, 12), st.data()), min_size=1, max_size=25)),
    )


@SETTINGS
@given(store_ops())
def fuzz_store(spec):
    row_bytes, obs_like, cap, rows, pcap, ops = spec
    prows = pcap + 1 + 5 if pcap else 0
    s = call(_C.ReplayStore, row_bytes, obs_like, cap, rows, pcap, prows, 1)
    if s is None:
        return
    arenas = [[np.zeros(r * rb, np.uint8) for rb in row_bytes] for r in (rows, prows)]
    s.attach(0, arenas[0])
    if pcap:
        s.attach(1, arenas[1])
    names = [f"obs/f{i}" if o else f"t{i}" for i, o in enumerate(obs_like)]
    call(s.name_fields, names, [np.dtype(np.uint8)] * len(row_bytes), [[rb] for rb in row_bytes])
    fh = tempfile.TemporaryFile()
    for op, data in ops:
        d = data.draw
        if op <= 3:  # add: sometimes right-sized, sometimes not
            T = d(st.one_of(st.integers(1, 30), ints))
            ok = d(st.booleans())
            arrs = [
                np.zeros(((T + 1 if o else T) if ok and 0 < T < 100 else d(st.integers(0, 5))) * rb, np.uint8)
                for o, rb in zip(obs_like, row_bytes)
            ]
            call(s.add, arrs, T, d(st.booleans()))
        elif op == 4:
            B, L = d(ints), d(ints)
            outs = [np.zeros(d(st.integers(0, 400)), np.uint8) for _ in row_bytes]
            call(
                s.sample_into,
                B,
                L,
                d(st.sampled_from(["none", "both", "left", "right", "x"])),
                d(st.booleans()),
                outs,
                np.zeros(d(st.integers(0, 50)), np.bool_),
                np.zeros(d(st.integers(0, 5)), np.int64),
                np.zeros(d(st.integers(0, 5)), np.int64),
                d(st.integers(-1, 8)),
            )
        elif op == 5:
            B = d(st.integers(-2, 50))
            call(s.draw, B, d(ints), "both", d(st.booleans()))
            call(s.draw_trajs, B, d(st.booleans()))
            call(s.draw_starts, np.array(d(st.lists(ints, max_size=5)), dtype=object), d(ints), "left")
        elif op == 6:
            ids = d(st.lists(ints, min_size=0, max_size=4))
            L = d(st.integers(-1, 20))
            B = len(ids)
            outs = [np.zeros(max(B, 1) * (L + 1) * rb, np.uint8) for rb in row_bytes] if L > 0 else []
            call(
                s.gather_into,
                np.array(ids, dtype=object),
                np.array(d(st.lists(ints, min_size=B, max_size=B)), dtype=object),
                L,
                outs,
                np.zeros(max(B, 1) * (L + 1), np.bool_),
                np.zeros(B, np.int64),
                np.zeros(B, np.int64),
                2,
            )
        elif op == 7:
            n = d(st.integers(0, 4))
            call(
                s.restore,
                d(st.integers(-1, 2)),
                np.array([d(ints) for _ in range(n)], dtype=object),
                np.array([d(ints) for _ in range(n)], dtype=object),
                np.array([d(ints) for _ in range(n)], dtype=object),
                d(ints),
                d(ints),
            )
        elif op == 8:
            call(s.locate, d(ints))
            call(s.views, np.array(d(st.lists(st.integers(-1, 30), max_size=4)), np.int64))
            call(setattr, s, "rng_state", [d(st.integers(0, 2**64 - 1)) for _ in range(4)])
        elif op == 9:
            fds = [[fh.fileno()] * len(row_bytes) for _ in range(2)]
            if d(st.booleans()):
                fds[1] = fds[1][:-1]
            call(s.snapshot, fds, d(st.sampled_from([0, 64, -1])))
        else:  # cut_into with random trajectory dicts
            B = d(st.integers(1, 3))
            L = d(st.integers(1, 10))
            trajs = []
            for _ in range(B):
                T = d(st.integers(0, 8))
                t = {"obs": {}}
                for name, o, rb in zip(names, obs_like, row_bytes):
                    r = (T + 1 if o else T) if d(st.booleans()) else d(st.integers(0, 9))
                    a = np.zeros((r, rb), np.uint8) if d(st.booleans()) else d(array_st())
                    (t["obs"] if name.startswith("obs/") else t)[name.split("/")[-1]] = a
                trajs.append(t)
            outs = [np.zeros(B * (L + 1 if o else L) * rb, np.uint8) for o, rb in zip(obs_like, row_bytes)]
            call(
                s.cut_into,
                trajs,
                L,
                "both",
                np.zeros(B, np.int64),
                None,
                outs,
                np.zeros(B * (L + 1), np.bool_),
                np.zeros(B, np.int64),
                np.zeros(B, np.int64),
                2,
            )
    fh.close()


@SETTINGS
@given(st.data())
def fuzz_relabel(data):
    d = data.draw
    B = d(st.integers(0, 3))
    goals = [d(array_st()) for _ in range(B)]
    achieved = [d(array_st()) for _ in range(B)]
    rl2s = [d(array_st()) for _ in range(B)]
    dones = [d(array_st()) for _ in range(B)]
    if d(st.booleans()):  # well-formed shapes, random everything else
        for i in range(B):
            T, g = d(st.integers(1, 6)), d(st.integers(1, 3))
            goals[i] = np.zeros((T + 1, g), np.float32)
            achieved[i] = np.zeros((T + 1, g), np.float32)
            rl2s[i] = np.zeros((T + 1, d(st.integers(1, 4))), np.float32)
            dones[i] = np.zeros(T, np.bool_)
    draws = np.zeros(tuple(d(st.lists(st.integers(0, 4), max_size=2))), np.float64) + d(
        st.one_of(st.floats(-1, 2), st.just(float("nan")))
    )
    threads = d(st.sampled_from([-1, 0, 1, 2, 8]))
    call(
        _C.relabel_her,
        goals,
        achieved,
        rl2s,
        dones,
        draws,
        d(ints),
        d(st.integers(-1, 4)),
        d(st.floats(allow_nan=True)),
        d(st.floats(allow_nan=True)),
        1.0,
        0.0,
        d(st.booleans()),
        threads,
    )
    call(
        _C.relabel_multigoal,
        goals,
        achieved,
        rl2s,
        dones,
        draws,
        d(ints),
        d(ints),
        d(st.integers(-1, 4)),
        d(st.floats(allow_nan=True)),
        threads,
    )


def _snapshot(root: Path) -> Path:
    rng = np.random.default_rng(0)
    buf = ReplayBuffer({"x": ((3,), np.float32)}, 2, capacity=300, protected_capacity=40)
    for i, T in enumerate([9, 30, 4, 17, 25]):
        buf.add_trajectory(
            {"x": rng.normal(size=(T + 1, 3)).astype(np.float32)},
            np.zeros((T + 1, 3), np.float32),
            np.arange(T + 1),
            np.zeros((T, 2), np.float32),
            np.zeros(T),
            np.zeros(T, bool),
            protected=i == 2,
        )
    buf.save(root / "orig")
    return root / "orig"


@SETTINGS
@given(st.data())
def fuzz_loader(data):
    d = data.draw
    tmp = Path(tempfile.mkdtemp())
    try:
        snap = tmp / "s"
        shutil.copytree(ORIG, snap)
        for _ in range(d(st.integers(1, 3))):
            fn = d(st.sampled_from(sorted(p.name for p in snap.iterdir())))
            raw = bytearray((snap / fn).read_bytes())
            kind = d(st.integers(0, 3))
            if kind == 0 and raw:
                pos = d(st.integers(0, len(raw) - 1))
                raw[pos] = d(st.integers(0, 255))
            elif kind == 1:
                raw = raw[: d(st.integers(0, len(raw)))]
            elif kind == 2 and fn.endswith("index.npy") and len(raw) >= 128 + 8:
                pos = 128 + 8 * d(st.integers(0, (len(raw) - 128) // 8 - 1))
                raw[pos : pos + 8] = int(d(ints)).to_bytes(8, "little", signed=True)
            (snap / fn).write_bytes(bytes(raw))
            if kind == 2 or kind == 3:  # re-sign so the crafted values reach the checks
                try:
                    m = json.loads((snap / "manifest.json").read_text())
                    for name, meta in m["files"].items():
                        if (snap / name).is_file():
                            b = (snap / name).read_bytes()
                            hs = 128 if len(b) >= 128 else 0
                            import zlib

                            meta["crc32"] = zlib.crc32(b[hs:])
                    if kind == 3:
                        m["next_id"] = d(ints)
                        m["partitions"][0]["rows"] = d(ints)
                    m["manifest_crc32"] = persist.manifest_crc(m)
                    (snap / "manifest.json").write_text(json.dumps(m))
                except Exception:  # noqa: BLE001 - the manifest itself was mangled
                    pass
        try:
            buf = ReplayBuffer.load(snap, verify=d(st.booleans()))
            if buf.num_trajectories:
                buf.sample(4, 6, "both")
                for i in buf.trajectory_ids().tolist():
                    buf.trajectory(i)
        except OK:
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    global ORIG
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp())
    ORIG = _snapshot(root)
    targets = [fuzz_store, fuzz_relabel, fuzz_loader]
    end, rounds = time.monotonic() + args.seconds, {t.__name__: 0 for t in targets}
    random.seed(os.getpid())
    while time.monotonic() < end:
        for t in targets:
            t()
            rounds[t.__name__] += 1
    shutil.rmtree(root, ignore_errors=True)
    print("fuzz rounds (60 examples each):", rounds)


if __name__ == "__main__":
    main()

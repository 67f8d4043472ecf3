"""Every file of a replay snapshot, crafted, truncated or bit-flipped: load raises a clear
ValueError or (for a harmless change) loads the very same data, and never crashes.

Loads run in one child process, so a segfault fails the test instead of killing pytest
(issue 10, row A: a crafted ``fifo-index.npy`` offset of 2**63-1 used to overflow the
native bounds check and crash at the next sample).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np

from amago_fast import ReplayBuffer
from amago_fast.replay import _npy, persist

# Shared by the test and the child: a digest of everything a snapshot holds.
DIGEST = textwrap.dedent("""
    import hashlib
    def digest(buf):
        h = hashlib.sha256()
        for i in buf.trajectory_ids().tolist():
            t = buf.trajectory(i)
            h.update(str(i).encode())
            for k in sorted(t["obs"]):
                h.update(t["obs"][k].tobytes())
            for k in ("rl2s", "time_idxs", "actions", "rews", "dones"):
                h.update(t[k].tobytes())
        h.update(repr(buf._store.rng_state).encode() + repr(buf._store.next_id).encode())
        return h.hexdigest()
""")
exec(DIGEST)  # defines digest()

CHILD = DIGEST + textwrap.dedent("""
    import json, sys
    from amago_fast import ReplayBuffer
    cases = json.load(open(sys.argv[1]))
    for c in cases:
        print("case", c["id"], flush=True)
        try:
            buf = ReplayBuffer.load(c["dir"], verify=c["verify"])
            d = digest(buf)  # noqa: F821
            buf.sample(4, 8)  # the crash of row A happened here, after a "successful" load
            print("loaded", c["id"], d, flush=True)
        except ValueError as e:
            print("refused", c["id"], str(e)[:200].replace(chr(10), " "), flush=True)
        except Exception as e:  # noqa: BLE001
            print("other", c["id"], type(e).__name__, str(e)[:200].replace(chr(10), " "), flush=True)
""")


def _snapshot(root):
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(
        {"x": ((3,), np.float32), "img": ((2, 2), np.uint8)}, 2, capacity=200, protected_capacity=60, seed=3
    )
    for i, T in enumerate([12, 30, 7, 25, 19, 40, 11]):
        buf.add_trajectory(
            {
                "x": rng.normal(size=(T + 1, 3)).astype(np.float32),
                "img": rng.integers(0, 255, (T + 1, 2, 2)).astype(np.uint8),
            },
            rng.normal(size=(T + 1, 3)).astype(np.float32),
            np.arange(T + 1),
            rng.normal(size=(T, 2)).astype(np.float32),
            rng.normal(size=T),
            rng.random(T) < 0.1,
            protected=i % 3 == 0,
        )
    buf.sample(8, 10)
    src = root / "orig"
    buf.save(src)
    return src, digest(ReplayBuffer.load(src))  # noqa: F821 - digest() is defined by exec(DIGEST)


def _write_index(path, table):
    with open(path, "wb") as fh:
        fh.write(_npy.header_bytes(table.dtype, table.shape, 128))
        fh.write(table.tobytes())


def _reseal(d, edit):
    """Edit the manifest (a function of the dict) and recompute its checksum: the kind of
    crafted snapshot an attacker, not bit rot, produces."""
    m = json.loads((d / "manifest.json").read_text())
    edit(m)
    m["manifest_crc32"] = persist.manifest_crc(m)
    (d / "manifest.json").write_text(json.dumps(m))


def _craft_index(d, name, row, col, value):
    path = d / f"{name}-index.npy"
    table = np.load(path)
    table[row, col] = value
    _write_index(path, table)
    _reseal(d, lambda m: m["files"][f"{name}-index.npy"].update(crc32=_npy.crc32(table)))


def _manifest_edits():
    def setter(*path):
        *keys, value = path

        def edit(m):
            obj = m
            for k in keys[:-1]:
                obj = obj[k]
            obj[keys[-1]] = value

        return edit

    big = 2**63 - 1
    return {
        "rows_huge": setter("partitions", 0, "rows", big),
        "rows_negative": setter("partitions", 0, "rows", -5),
        "rows_float": setter("partitions", 0, "rows", 3.5),
        "ntraj_huge": setter("partitions", 0, "num_trajectories", big),
        "next_id_zero": setter("next_id", 0),
        "next_id_huge": setter("next_id", 2**70),
        "rng_zero": setter("rng_state", [0, 0, 0, 0]),
        "rng_too_big": setter("rng_state", [2**64, 1, 1, 1]),
        "rng_short": setter("rng_state", [1, 2]),
        "capacity_tiny": setter("config", "capacity", 3),
        "capacity_huge": setter("config", "capacity", 2**62),
        "dtype_object": setter("config", "fields", 0, "dtype", "|O"),
        "dtype_garbage": setter("config", "fields", 0, "dtype", "<q9"),
        "shape_changed": setter("config", "fields", 0, "shape", [4]),
        "shape_negative": setter("config", "fields", 0, "shape", [-3]),
        "file_shape": setter("files", "fifo-00.npy", "shape", [big, 3]),
        "file_dtype": setter("files", "fifo-00.npy", "dtype", "|O"),
        "file_entry_missing": lambda m: m["files"].pop("fifo-01.npy"),
        "partitions_swapped": lambda m: m["partitions"].reverse(),
        "partitions_missing": setter("partitions", []),
        "files_not_a_dict": setter("files", [1, 2]),
        "config_not_a_dict": setter("config", "x"),
    }


def _cases(src, root):
    cases, n = [], 0

    def case(tag, damage, verify=True):
        nonlocal n
        d = root / f"c{n:03d}"
        shutil.copytree(src, d)
        damage(d)
        cases.append({"id": f"{n:03d}", "tag": tag, "dir": str(d), "verify": verify})
        n += 1

    files = sorted(p.name for p in src.iterdir())
    rng = np.random.default_rng(10)
    for fn in files:
        size = (src / fn).stat().st_size
        for cut in sorted({0, 7, size // 2, size - 1}):
            case(f"truncate {fn} to {cut}", lambda d, fn=fn, cut=cut: os.truncate(d / fn, cut))
        for pos in rng.integers(0, size, 5).tolist():
            bit = int(rng.integers(0, 8))

            def flip(d, fn=fn, pos=pos, bit=bit):
                raw = bytearray((d / fn).read_bytes())
                raw[pos] ^= 1 << bit
                (d / fn).write_bytes(bytes(raw))

            case(f"flip {fn} byte {pos} bit {bit}", flip)
        case(f"delete {fn}", lambda d, fn=fn: os.remove(d / fn))
        case(f"replace {fn} by garbage", lambda d, fn=fn: (d / fn).write_bytes(b"\x93NUMPY\x01\x00" + b"{" * 90))
    for name in ("fifo", "protected"):
        for col, col_name in enumerate(("id", "offset", "length")):
            for value in (2**63 - 1, -(2**63), -1, 0, 2**31, 10**9):
                for verify in (True, False):
                    case(
                        f"{name}-index {col_name}={value} verify={verify}",
                        lambda d, name=name, col=col, value=value: _craft_index(d, name, 0, col, value),
                        verify,
                    )
        case(
            f"{name}-index object dtype",
            lambda d, name=name: (d / f"{name}-index.npy").write_bytes(
                _npy.header_bytes(np.dtype(object), (1, 3), 128) + b"\0" * 24
            ),
        )
    for tag, edit in _manifest_edits().items():
        case(f"manifest {tag}", lambda d, edit=edit: _reseal(d, edit))
    case("manifest not an object", lambda d: (d / "manifest.json").write_text("[1, 2]"))
    case("manifest deep nesting", lambda d: (d / "manifest.json").write_text("[" * 100000))
    case("manifest binary", lambda d: (d / "manifest.json").write_bytes(b"\xff\xfe\x00"))
    return cases


def test_every_damaged_snapshot_is_refused_or_identical(tmp_path):
    src, want = _snapshot(tmp_path)
    cases = _cases(src, tmp_path)
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps(cases))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(spec)], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    lines = proc.stdout.splitlines()
    tags = {c["id"]: c["tag"] for c in cases}
    started = [ln.split(" ", 2)[1] for ln in lines if ln.startswith("case ")]
    assert proc.returncode == 0, (
        f"the child died (rc={proc.returncode}) while loading case "
        f"{tags[started[-1]] if started else '?'}:\n{proc.stderr[-3000:]}"
    )
    results = {ln.split(" ", 2)[1]: f"{ln} [{tags[ln.split(' ', 2)[1]]}]" for ln in lines if not ln.startswith("case ")}
    assert len(results) == len(cases)
    bad = [r for r in results.values() if r.startswith("other") or (r.startswith("loaded") and want not in r)]
    assert not bad, "\n".join(bad)
    refused = sum(r.startswith("refused") for r in results.values())
    assert refused >= len(cases) * 0.9, "most damage must be detected, not loaded"
    # the crafted offset of row A, with and without verify, is refused by name
    for c in cases:
        if "offset=9223372036854775807" in c["tag"]:
            assert results[c["id"]].startswith("refused"), results[c["id"]]


def test_crafted_offset_is_refused_by_the_native_restore_too():
    """The C++ check alone (without the Python loader's checks) must not overflow."""
    child = textwrap.dedent("""
        import numpy as np
        from amago_fast import _C
        s = _C.ReplayStore([4], [True], 10, 20, 0, 0, 1)
        s.attach(0, [np.zeros((20, 4), np.uint8)])
        for off, n in [(2**63 - 1, 1), (1, 2**63 - 1), (2**63 - 2, 2), (-1, 1), (0, 0), (15, 5)]:
            try:
                s.restore(0, np.array([0]), np.array([off]), np.array([n]), 20, 1)
                print("accepted", off, n)
            except ValueError as e:
                print("refused", off, n)
        for ids, nid in [([5], 3), ([-2], 1)]:
            try:
                s.restore(0, np.array(ids), np.array([0]), np.array([2]), 20, nid)
                print("accepted id", ids)
            except ValueError:
                print("refused id", ids)
        print(s.num_trajectories)
    """)
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout.split()
    assert "accepted" not in out, proc.stdout
    assert out[-1] == "0"

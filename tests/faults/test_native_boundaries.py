"""The native store's own size checks cannot be fooled by int64 overflow: a product that
wraps around (rows * row_bytes, B * (L+1) * row_bytes) used to let a too-small array
pass. Each call runs in a child process, so a memory error fails the test, not pytest.
(The hypothesis fuzz of every entry point under ASan: benchmarks/sanitize_native.sh.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent("""
    import os, tempfile
    import numpy as np
    from amago_fast import _C

    def expect(fn, *args):
        try:
            fn(*args)
        except (ValueError, MemoryError) as e:
            print("refused", type(e).__name__, str(e).replace(" ", "_")[:60])
            return
        print("ACCEPTED")

    # rows * row_bytes = 4 * 2**62 wraps to 0: an empty arena must not pass
    s = _C.ReplayStore([2**62], [True], 1, 4, 0, 0, 1)
    expect(s.attach, 0, [np.zeros(0, np.uint8)])

    s = _C.ReplayStore([1, 1], [True, False], 10, 20, 0, 0, 1)
    s.attach(0, [np.zeros(20, np.uint8), np.zeros(20, np.uint8)])
    s.add([np.zeros(4, np.uint8), np.zeros(3, np.uint8)], 3, False)
    e = np.zeros(0, np.uint8)
    # B * (L+1) * 1 = 2**62 * 4 wraps to 0, B * 8 wraps to 0: empty outputs must not pass
    expect(s.sample_into, 2**62, 3, "none", False, [e, e], np.zeros(0, bool), np.zeros(0, np.int64),
           np.zeros(0, np.int64), 1)
    expect(s.sample_into, 1, 2**62, "none", False, [e, e], np.zeros(0, bool), np.zeros(1, np.int64),
           np.zeros(1, np.int64), 1)
    # (T+1) * row_bytes overflow in add
    big = _C.ReplayStore([4], [True], 10, 20, 0, 0, 1)
    big.attach(0, [np.zeros(80, np.uint8)])
    expect(big.add, [np.zeros(4, np.uint8)], 2**62, False)
    expect(big.add, [np.zeros(4, np.uint8)], -1, False)
    expect(big.add, [np.zeros(4, np.uint8)], 2**63 - 1, False)  # T + 1 itself overflowed
    expect(big.draw_starts, np.array([2**63 - 1]), 2**40, "both")  # n + L overflowed
    expect(_C.ReplayStore, [4], [True], 2**63 - 1, 2**63 - 1, 0, 0, 1)  # capacity + 1 overflowed
    expect(_C.ReplayStore, [4], [True], 3, 10, 2**63 - 1, -(2**63), 1)
    # relabeling: 1 + num_goals and (T+1) * goal_dim overflowed (found by the UBSan fuzz)
    g, r, dn = np.zeros((3, 1, 2), np.float32), np.zeros((3, 2), np.float32), np.zeros(2, bool)
    expect(_C.relabel_multigoal, [g], [np.zeros((3, 1), np.float32)], [r], [dn],
           np.zeros((1, 2)), 2**63 - 1, 1, 1, 0.1, 1)
    expect(_C.relabel_her, [np.zeros((3, 1), np.float32)], [np.zeros((3, 1), np.float32)], [r], [dn],
           np.zeros((1, 2)), 2**62, 1, 0.5, 0.1, 1.0, 0.0, False, 1)
    # snapshot: wrong fd table, negative offset; a bad fd is an errno, not a crash
    expect(s.snapshot, [[1], [1]], 0)
    expect(s.snapshot, [[1, 1], [1, 1]], -1)
    parts, rng, nid, err = s.snapshot([[-1, -1], [-1, -1]], 0)
    print("errno", err[0], err[1], err[2])
    with tempfile.TemporaryFile() as fh:
        fd = fh.fileno()
        parts, rng, nid, err = s.snapshot([[fd, fd], [fd, fd]], 0)
        print("errno", err[0], "rows", parts[0][3], parts[1][3], "size", os.fstat(fd).st_size)
""")


def test_overflowing_sizes_are_refused():
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert not [ln for ln in lines if ln == "ACCEPTED"], proc.stdout
    refused = [ln for ln in lines if ln.startswith("refused")]
    assert len(refused) == 13, proc.stdout
    assert all("ValueError" in ln for ln in refused), proc.stdout
    assert sum("num_goals_and_goal_dim" in ln or "goal_dim_must_be_in" in ln for ln in refused) == 2
    assert "errno 9 0 0" in lines  # EBADF from the first write, partition 0, field 0
    assert "errno 0 rows 4 0 size 4" in lines  # 4 one-byte rows (both fields write from byte 0)

"""Render bench_attention.py results (pytest-benchmark JSON) as the markdown tables of
benchmarks/RESULTS.md: one row per (op, D, L), one column per implementation.

    pytest benchmarks/bench_attention.py --benchmark-json=attn.json
    python benchmarks/attention_table.py attn.json
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict


def main(path: str) -> None:
    with open(path) as f:
        data = json.load(f)
    machine = data.get("machine_info", {})
    print(f"Machine: {machine.get('node', '?')}; {data.get('commit_info', {}).get('id', '')[:10]}")
    gpu = next((b["extra_info"].get("gpu") for b in data["benchmarks"] if b["extra_info"].get("gpu")), None)
    if gpu:
        print(f"GPU: {gpu}")
    tables = defaultdict(dict)  # op -> {(D, L): {impl: cell}}
    for b in data["benchmarks"]:
        m = re.match(r"test_gpu_(\w+)\[(\w+)-(\d+)-(\d+)\]", b["name"])
        if not m:
            continue
        op, impl, d, length = m.group(1), m.group(2), int(m.group(3)), int(m.group(4))
        ms = b["stats"]["median"] * 1e3
        rate = b["extra_info"].get("tflops") or b["extra_info"].get("gbps")
        tables[op].setdefault((d, length), {})[impl] = f"{ms:.3f} ms / {rate}"
    for op, rows in tables.items():
        unit = "GB/s" if op == "decode" else "TFLOP/s"
        impls = sorted({i for r in rows.values() for i in r})
        print(f"\n### {op} (median ms / {unit})\n")
        print("| D | L | " + " | ".join(impls) + " |")
        print("|---|---|" + "---|" * len(impls))
        for (d, length), r in sorted(rows.items()):
            print(f"| {d} | {length} | " + " | ".join(r.get(i, "-") for i in impls) + " |")


if __name__ == "__main__":
    main(sys.argv[1])

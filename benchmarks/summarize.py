"""Print each benchmark group of a pytest-benchmark JSON file with times relative to the
group's fastest case and, where a case records ``transitions_per_call``, throughput.

    python benchmarks/summarize.py benchmarks/results.json
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def main(path: str) -> None:
    with open(path) as f:
        data = json.load(f)
    groups = defaultdict(list)
    for b in data["benchmarks"]:
        groups[b.get("group") or "(no group)"].append(b)
    machine = data.get("machine_info", {})
    print(f"# {path}: {machine.get('cpu', {}).get('brand_raw', '?')}, {data.get('datetime', '?')}")
    for name, cases in sorted(groups.items()):
        best = min(c["stats"]["median"] for c in cases)
        print(f"\n## {name}\n| case | median (us) | min (us) | x fastest | transitions/s |")
        print("|---|---|---|---|---|")
        for c in sorted(cases, key=lambda c: c["stats"]["median"]):
            s, n = c["stats"], c.get("extra_info", {}).get("transitions_per_call")
            rate = f"{n / s['median']:.3g}" if n else ""
            print(
                f"| {c['name']} | {s['median'] * 1e6:.1f} | {s['min'] * 1e6:.1f} | {s['median'] / best:.2f} | {rate} |"
            )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results.json")

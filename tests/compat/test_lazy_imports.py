"""amago_fast never imports a peer package (amago, torchrl, tensordict, sb3) by itself."""
from __future__ import annotations

import subprocess
import sys

PEERS = ("amago", "torchrl", "tensordict", "stable_baselines3")


def test_importing_amago_fast_and_compat_imports_no_peer():
    code = (
        "import sys, amago_fast, amago_fast.compat\n"
        "import amago_fast.compat.torchrl, amago_fast.compat.amago_dataset\n"
        f"print(sorted(m for m in {PEERS!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

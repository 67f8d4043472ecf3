"""Compile every attention kernel and autotuning tile for sm_90 *without a GPU* and print
register use and spills (what the tile tables in kernels/attention_{fwd,bwd}.py were
chosen from). Needs only Triton's bundled LLVM, ptxas and cuobjdump.

    python benchmarks/attention_sm90_report.py bf16 32,64     # dtype, head dims

Slow on a small CPU (fp32's full-precision dots especially): minutes per head dim.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

os.environ.pop("TRITON_INTERPRET", None)  # compile for real, before the kernels import

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402

from amago_fast.kernels import attention_bwd, attention_decode, attention_fwd  # noqa: E402

TARGET = GPUTarget("cuda", 90, 32)
CUOBJDUMP = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
FP32_PTRS = {"Lse", "Delta", "PartO", "PartLse"}
TENSOR_PTRS = {"Q", "K", "V", "DO", "DK", "DV", "DQ", "Out"}


def _jit_fn(kernel):
    while type(kernel).__name__ == "Autotuner":
        kernel = kernel.fn
    return kernel


def compile_report(kernel, consts: dict, dtype: str, num_warps: int, num_stages: int) -> str:
    """'REG n STACK m' for one specialisation (STACK > 0 means spills)."""
    fn = _jit_fn(kernel)
    sig = {}
    for name in fn.arg_names:
        if name in consts:
            sig[name] = "constexpr"
        elif name in FP32_PTRS:
            sig[name] = "*fp32"
        elif name == "SeqlensK":
            sig[name] = "*i32"
        elif name in TENSOR_PTRS:
            sig[name] = f"*{dtype}"
        elif name in ("qk_scale", "sm_scale"):
            sig[name] = "fp32"
        else:
            sig[name] = "i32"
    src = triton.compiler.ASTSource(fn=fn, signature=sig, constexprs=consts)
    compiled = triton.compile(src, target=TARGET, options={"num_warps": num_warps, "num_stages": num_stages})
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(compiled.asm["cubin"])
        f.flush()
        usage = subprocess.run([CUOBJDUMP, "-res-usage", f.name], capture_output=True, text=True).stdout
    m = re.search(r"REG:(\d+) STACK:(\d+)", usage)
    return f"REG {m.group(1)} STACK {m.group(2)}" if m else "no resource info"


def main(dtype: str, dims: list) -> None:
    prec = "ieee" if dtype == "fp32" else "tf32"
    for d in dims:
        for module, kernels in (
            (attention_fwd, [attention_fwd._attn_fwd]),
            (attention_bwd, [attention_bwd._bwd_dkdv, attention_bwd._bwd_dq]),
        ):
            table = module._TILES
            tiles = table["fp32"] if prec == "ieee" else table[min(k for k in table if k != "fp32" and k >= d)]
            for bm, bn, warps, stages in tiles:
                for has_left, has_right in ((False, True), (True, False)):
                    consts = dict(
                        HEAD_DIM=d, HAS_LEFT=has_left, HAS_RIGHT=has_right, DOT_PREC=prec, BLOCK_M=bm, BLOCK_N=bn
                    )
                    for k in kernels:
                        rep = compile_report(k, consts, dtype, warps, stages)
                        print(
                            f"{dtype} D={d} {_jit_fn(k).__name__} tile={bm}x{bn} w{warps} s{stages} "
                            f"left={has_left} right={has_right}: {rep}",
                            flush=True,
                        )
        for ring in (False, True):
            consts = dict(
                HEAD_DIM=d,
                HAS_LEFT=True,
                HAS_RIGHT=True,
                RING=ring,
                DOT_PREC=prec,
                BLOCK_M=16,
                BLOCK_N=64 if d <= 64 else 32,
            )
            rep = compile_report(attention_decode._decode_split, consts, dtype, 8 if dtype == "fp32" else 4, 3)
            print(f"{dtype} D={d} _decode_split ring={ring}: {rep}", flush=True)


if __name__ == "__main__":
    main(
        sys.argv[1] if len(sys.argv) > 1 else "bf16",
        [int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "32,64").split(",")],
    )

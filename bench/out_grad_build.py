"""Build the fused out-projection gradient kernel (ops/out_grad_kernels.py) for an H100/H200 (sm90) without a GPU and
print, per configuration of bench/out_grad.py, its registers and stack (spilled) bytes per thread and its count of
wgmma and TMA instructions: whether the GEMM is Hopper's, and what the epilogue costs in registers.

    python bench/out_grad_build.py [--hidden 2048] [--plain]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from core_build import compile_sm90, resource_usage, sass_lines  # noqa: E402
from out_grad import CONFIGS  # noqa: E402

from neox_metala.ops import out_grad_kernels as kernels  # noqa: E402

FP32_POINTERS = ("gate_bias", "stats", "da_out", "partial")
INTS = ("M", "BATCH", "T", "plane")


def build(config, hidden, epilogue):
    block_m, block_h, group_m, stages, warps, split, ws, *register_cap = config
    fn = kernels.out_grad_kernel
    constants = dict(H=16, K=64, V=128, HIDDEN=hidden, BM=block_m, BH=block_h, BK=64, GROUP_M=group_m,
                     STAGES=stages, AUG=True, BIAS=True, SEQ_FIRST=True, PRECISION="tf32", EPILOGUE=epilogue,
                     SPLIT=split, WS=ws)  # fmt: skip
    signature = {}
    for arg in fn.arg_names:
        if arg in constants:
            signature[arg] = "constexpr"
        elif arg == "normalizer":
            signature[arg] = "fp32"
        elif arg in INTS or arg.startswith("stride_"):
            signature[arg] = "i32"
        else:
            signature[arg] = "*fp32" if arg in FP32_POINTERS else "*bf16"
    specialised = [arg for arg in fn.arg_names if signature[arg].startswith("*") or arg.startswith("stride_")]
    return compile_sm90(fn, signature, constants, specialised, warps, maxnreg=register_cap[0] if register_cap else None)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--plain", action="store_true", help="the GEMM alone (EPILOGUE False)")
    args = parser.parse_args()
    for config in CONFIGS:
        try:
            compiled = build(config, args.hidden, not args.plain)
        except Exception as error:  # a configuration that does not build: say so, go on
            print(f"{config}: failed: {type(error).__name__}: {str(error)[:400]}", flush=True)
            continue
        sass = sass_lines(compiled.asm["cubin"])
        counts = {op: sum(op in line for line in sass) for op in ("HGMMA", "UTMALDG", "SYNCS", "LDG", "STG")}
        print(f"{config}: {resource_usage(compiled.asm['cubin'])} smem {compiled.metadata.shared} {counts}", flush=True)


if __name__ == "__main__":
    main()

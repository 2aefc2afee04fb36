"""Build the epilogue's kernels (ops/epilogue_kernels.py) for an H100/H200 (sm90) without a GPU and print each one's
registers and stack (spilled) bytes per thread: Triton's compiler and the ptxas bundled with its wheel.

    python bench/epilogue_build.py [--dtype bf16] [--forward 16,4] [--backward 16,4] [--steps 8] [--no-aug]

The interpreter runs the kernels' arithmetic but not the compiler (bench/core_build.py says what that misses).
Shapes: H=8, K=64, V=128 (the 380M model); blocks (tokens, warps): ops/epilogue_op.py's defaults unless given.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from core_build import compile_sm90, parse_blocks, resource_usage  # noqa: E402

from neox_metala.ops import epilogue_kernels as kernels  # noqa: E402
from neox_metala.ops import epilogue_op  # noqa: E402

FP32_POINTERS = ("gate_bias", "aug_balance", "stats", "dw_partial", "db_partial")
FLOATS = ("normalizer", "eps")


def build(name, dtype, warps, constants, maxnreg=None):
    fn = getattr(kernels, name)
    signature = {}
    for arg in fn.arg_names:
        if arg in constants:
            signature[arg] = "constexpr"
        elif arg in FLOATS:
            signature[arg] = "fp32"
        elif arg in ("T", "plane") or arg.startswith("stride_"):
            signature[arg] = "i32"
        else:
            signature[arg] = "*fp32" if arg in FP32_POINTERS else f"*{dtype}"
    # the launcher's specialisation at the model's shapes: torch's 16-byte aligned allocations, and strides (3W for
    # views of the projection, H·V, B·H·V for a (seq, batch) transpose) divisible by 16, so accesses are vectorised
    specialised = [arg for arg in fn.arg_names if signature[arg].startswith("*") or arg.startswith("stride_")]
    return compile_sm90(fn, signature, constants, specialised, warps, maxnreg=maxnreg)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--forward", type=parse_blocks, default=epilogue_op.FORWARD_BLOCKS, help="BT,warps")
    parser.add_argument("--backward", type=parse_blocks, default=epilogue_op.BACKWARD_BLOCKS, help="BT,warps[,maxnreg]")
    parser.add_argument("--steps", type=int, default=epilogue_op.BACKWARD_STEPS)
    parser.add_argument("--stages", type=int, default=1, help="the backward's step loop's pipeline stages")
    parser.add_argument("--no-aug", action="store_true", help="without aug_balance (AUG=False)")
    args = parser.parse_args()
    shape = dict(H=8, K=64, V=128, BK=64, BV=128, AUG=not args.no_aug, BIAS=True)
    builds = [
        ("epilogue_forward_kernel", args.forward, {}),
        ("epilogue_backward_kernel", args.backward, dict(STEPS=args.steps, STAGES=args.stages)),
    ]
    for name, (block_t, warps, *cap), extra in builds:  # cap: registers per thread (Triton's maxnreg)
        constants = dict(shape, BT=block_t, **extra)
        compiled = build(name, args.dtype, warps, constants, *cap)
        shown = {key: constants[key] for key in ("BT", "AUG", *extra)}
        print(f"{name} {args.dtype} warps {warps} {shown}: {resource_usage(compiled.asm['cubin'])}", flush=True)


if __name__ == "__main__":
    main()

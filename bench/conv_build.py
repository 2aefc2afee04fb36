"""Build the short-convolution kernels (ops/short_conv_kernels.py) for an H100/H200 (sm90) without a GPU and print
each one's registers and stack (spilled) bytes per thread: Triton's compiler and the ptxas bundled with its wheel.

    python bench/conv_build.py [--dtype bf16] [--width 4]

The interpreter runs the kernels' arithmetic but not the compiler (bench/core_build.py says what that misses).
Blocks: ops/short_conv_op.py's defaults unless given.
"""

from __future__ import annotations

import argparse
import os
import sys

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from core_build import resource_usage  # noqa: E402

from neox_metala.ops import short_conv_kernels as kernels  # noqa: E402
from neox_metala.ops import short_conv_op  # noqa: E402

INTEGERS = ("T", "C", "stride_xb", "stride_xt", "stride_db", "stride_dt")


def build(name, dtype, warps, constants):
    fn = getattr(kernels, name)
    pointers = {"x": dtype, "y": dtype, "dy": dtype, "dx": dtype, "weight": "fp32", "dw_partial": "fp32"}
    signature = {}
    for arg in fn.arg_names:
        if arg in pointers:
            signature[arg] = f"*{pointers[arg]}"
        else:
            signature[arg] = "i32" if arg in INTEGERS else "constexpr"
    constexprs = {(fn.arg_names.index(arg),): value for arg, value in constants.items()}
    source = ASTSource(fn=fn, signature=signature, constexprs=constexprs)
    return triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": warps})


def _blocks(text):
    return tuple(int(n) for n in text.split(","))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--width", type=int, default=4)
    parser.add_argument("--forward", type=_blocks, default=short_conv_op.FORWARD_BLOCKS, help="BT,BC,warps")
    parser.add_argument("--backward", type=_blocks, default=short_conv_op.BACKWARD_BLOCKS, help="BT,BC,warps")
    parser.add_argument("--steps", type=int, default=short_conv_op.BACKWARD_STEPS)
    args = parser.parse_args()
    block_t, block_c, warps = args.forward
    forward = dict(W=args.width, BT=block_t, BC=block_c)
    compiled = build("conv_forward_kernel", args.dtype, warps, forward)
    print(f"conv_forward_kernel {args.dtype} warps {warps} {forward}: {resource_usage(compiled.asm['cubin'])}")
    block_t, block_c, warps = args.backward
    width_block = 1 << (args.width - 1).bit_length()
    backward = dict(W=args.width, WP=width_block, BT=block_t, BC=block_c, STEPS=args.steps)
    compiled = build("conv_backward_kernel", args.dtype, warps, backward)
    print(f"conv_backward_kernel {args.dtype} warps {warps} {backward}: {resource_usage(compiled.asm['cubin'])}")


if __name__ == "__main__":
    main()

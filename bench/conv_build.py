"""Build the short-convolution kernels (ops/short_conv_kernels.py) for an H100/H200 (sm90) without a GPU and print
each one's registers and stack (spilled) bytes per thread: Triton's compiler and the ptxas bundled with its wheel.

    python bench/conv_build.py [--dtype bf16] [--width 4] [--forward 4,256,2,32,3] [--backward ...] [--candidates]

The interpreter runs the kernels' arithmetic but not the compiler (bench/core_build.py says what that misses).
Blocks: ops/short_conv_op.py's defaults unless given, or all of bench/conv.py's candidates (--candidates).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from core_build import compile_sm90, parse_blocks, resource_usage  # noqa: E402

from neox_metala.ops import short_conv_kernels as kernels  # noqa: E402
from neox_metala.ops import short_conv_op  # noqa: E402

INTEGERS = ("T", "C", "stride_xb", "stride_xt", "stride_db", "stride_dt")


def build(name, dtype, warps, constants):
    fn = getattr(kernels, name)
    pointers = {"x": dtype, "y": dtype, "dy": dtype, "dpre": dtype, "dx": dtype, "weight": "fp32", "dw_partial": "fp32"}
    signature = {}
    for arg in fn.arg_names:
        if arg in pointers:
            signature[arg] = f"*{pointers[arg]}"
        else:
            signature[arg] = "i32" if arg in INTEGERS else "constexpr"
    # the launcher's specialisation at the model's shapes (B8 T2048 C1024, x a (seq, batch) transpose): torch's
    # 16-byte aligned allocations and sizes and strides divisible by 16, so the loads and stores are vectorised
    specialised = [arg for arg in signature if arg in pointers or arg in INTEGERS]
    return compile_sm90(fn, signature, constants, specialised, warps)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--width", type=int, default=4)
    op = short_conv_op
    forward = (*op.FORWARD_BLOCKS, op.FORWARD_STEPS, op.FORWARD_STAGES)
    backward = (*op.BACKWARD_BLOCKS, op.BACKWARD_STEPS, op.BACKWARD_STAGES)
    parser.add_argument("--forward", type=parse_blocks, default=forward, help="BT,BC,warps,steps,stages")
    parser.add_argument("--backward", type=parse_blocks, default=backward, help="BT,BC,warps,steps,stages")
    parser.add_argument("--candidates", action="store_true", help="bench/conv.py's block lists instead")
    args = parser.parse_args()
    if args.candidates:
        import conv

        kernels = [("conv_forward_kernel", blocks) for blocks in conv.FORWARD_BLOCKS]
        kernels += [("conv_backward_kernel", blocks) for blocks in conv.BACKWARD_BLOCKS]
    else:
        kernels = [("conv_forward_kernel", args.forward), ("conv_backward_kernel", args.backward)]
    for name, (block_t, block_c, warps, steps, stages) in kernels:
        constants = dict(W=args.width, BT=block_t, BC=block_c, STEPS=steps, STAGES=stages)
        compiled = build(name, args.dtype, warps, constants)
        print(f"{name} {args.dtype} warps {warps} {constants}: {resource_usage(compiled.asm['cubin'])}", flush=True)


if __name__ == "__main__":
    main()

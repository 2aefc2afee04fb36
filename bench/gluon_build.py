"""Build MetaLA's Gluon kernels (ops/metala_core_gluon_kernels.py) for an H100/H200 (sm90) without a GPU, as
bench/core_build.py builds the Triton ones, and print each build's registers, spills, instructions, barriers, wgmma,
global loads and stores and shared memory. The interpreter runs no Gluon: this is the CPU's check that a kernel
compiles at all.

    python bench/gluon_build.py [--kernels qk_grads_kernel ...] [--maxnreg 168] [--sass]
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import triton
from triton.backends.compiler import GPUTarget

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from neox_metala.ops import metala_core_gluon_kernels  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import core_build  # noqa: E402

FP32 = {"decays", "cums", "aug_da", "aug_w", "aug_a", "d_gate_logits", "carried"}
KERNELS = {  # kernel: (its pointers, its constexprs)
    "qk_grads_kernel": (
        ["q", "v", "d_out", "states", "state_grads", "decays", "cums", "dq", "d_gate_logits", "aug_da", "aug_w"],
        {"H": 16, "DOUBLINGS": 4},
    ),
}


def compile_sm90(fn, pointers, constants, maxnreg=None):
    """Triton's full compile of the Gluon kernel `fn` for sm90 at 4 warps: its pointers (fp32 where FP32 names them,
    int32 flags, else bf16) 16-byte aligned as its strides, `constants` its constexprs, every other argument int32
    (scale and normalizer fp32)."""
    from triton.experimental.gluon._runtime import GluonASTSource

    signature = {p: "*i32" if p == "flags" else "*fp32" if p in FP32 else "*bf16" for p in pointers}
    signature = {arg: signature.get(arg, "constexpr" if arg in constants else "i32") for arg in fn.arg_names}
    signature.update({arg: "fp32" for arg in ("scale", "normalizer") if arg in signature})
    index = fn.arg_names.index
    aligned = [*pointers, *(arg for arg in fn.arg_names if arg.startswith("stride_"))]
    source = GluonASTSource(
        fn=fn, signature=signature, constexprs={(index(arg),): value for arg, value in constants.items()},
        attrs={(index(arg),): [["tt.divisibility", 16]] for arg in aligned},
    )  # fmt: skip
    return triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4, "maxnreg": maxnreg})


def summary(compiled) -> str:
    """A build's registers and spills, instructions, barriers, wgmma, MUFU, global loads and stores, shared memory."""
    cubin = compiled.asm["cubin"]
    lines = core_build.sass_lines(cubin)
    count = lambda op: sum(1 for line in lines if re.search(rf"\s{op}\b", line))  # noqa: E731
    return (
        f"{core_build.resource_usage(cubin)}, {len(lines)} instructions, BAR {count('BAR.SYNC')}, "
        f"HGMMA {count('HGMMA')}, MUFU {count('MUFU')}, LDG {count('LDG')}, STG {count('STG')}, "
        f"shared {compiled.metadata.shared} B"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernels", nargs="+", default=list(KERNELS))
    parser.add_argument("--maxnreg", type=int, help="registers per thread at most (the launch's maxnreg)")
    parser.add_argument("--sass", action="store_true", help="print the SASS too")
    args = parser.parse_args()
    for name in args.kernels:
        compiled = compile_sm90(getattr(metala_core_gluon_kernels, name), *KERNELS[name], args.maxnreg)
        print(f"{name}: {summary(compiled)}")
        if args.sass:
            print("\n".join(core_build.sass_lines(compiled.asm["cubin"])))


if __name__ == "__main__":
    main()

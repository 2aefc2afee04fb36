"""Build MetaLA's core kernels (ops/metala_core_*kernels.py) for an H100/H200 (sm90) without a GPU, and print each
kernel's registers and spilled bytes per thread and its shared memory: Triton's full compiler and the ptxas bundled
with its wheel.

    python bench/core_build.py [--dtype bf16] [--warps 8] [--stages 2] [--bk 32] [--bv 32] [--reverse]
                               [--maxnreg 128] [--kernels scan_kernel ...]

The interpreter (TRITON_INTERPRET=1) runs the kernels' arithmetic but not the compiler, so it lets pass what only
compiling catches (a branch whose results differ in type, for one); and spills are what to watch when tuning the
blocks of the chunk-parallel kernels. Shapes: H=8, K=64, V=128, chunks of 64.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from neox_metala.ops import (  # noqa: E402
    metala_core_dv_kernels,
    metala_core_grad_kernels,
    metala_core_inputs,
    metala_core_kernels,
    metala_core_output_kernels,
)
from neox_metala.ops.options import MetaLAOptions  # noqa: E402

POINTERS = {
    "state_updates_kernel": ["v", "gate_logits", "states", "decays"],
    "state_grad_updates_kernel": ["q", "gate_logits", "d_out", "state_grads", "decays"],
    "scan_kernel": ["buffer", "decays"],
    "output_kernel": ["q", "gate_logits", "v", "states", "decays", "out", "aug_w", "aug_a"],
    "chunk_grads_kernel": [
        "q",
        "gate_logits",
        "v",
        "d_out",
        "states",
        "state_grads",
        "decays",
        "cums",
        "dq",
        "d_gate_logits",
        "aug_da",
        "aug_w",
    ],
    "chunk_dv_kernel": ["q", "gate_logits", "cums", "d_out", "state_grads", "decays", "dv"],
    "decay_rows_kernel": ["gate_logits", "cums"],
}
# the inputs' and gradients' row strides: 3W for views of the (B, T, 3W) projection (and of its gradient), H·D when
# contiguous, multiples of 16 either way
STRIDES = ("stride_q", "stride_g", "stride_v", "stride_dq", "stride_dg", "stride_dv")


def build(name, dtype, warps, stages, constants, maxnreg=None):
    modules = (metala_core_kernels, metala_core_output_kernels, metala_core_grad_kernels, metala_core_dv_kernels)
    fn = next(getattr(module, name) for module in modules if hasattr(module, name))
    fp32 = ("d_gate_logits", "decays", "cums", "aug_da", "aug_w", "aug_a")
    signature = {arg: ("*fp32" if arg in fp32 else f"*{dtype}") for arg in POINTERS[name]}
    signature.update({"scale": "fp32", "normalizer": "fp32", "T": "i32", "NT": "i32"})
    signature.update({arg: "i32" for arg in STRIDES})
    signature = {arg: signature.get(arg, "constexpr") for arg in fn.arg_names}
    # the launcher's specialisation of torch's allocations: 16-byte aligned pointers (vector loads, and the
    # pipelining of loads that do not feed a dot, which needs ≥ 32-bit accesses), and strides divisible by 16
    specialised = [arg for arg in (*POINTERS[name], *STRIDES) if arg in fn.arg_names]
    # the launcher's DOUBLINGS (the qk gradients' sigmoid(−x)) for the model's decay normalizer
    constants = {"DOUBLINGS": metala_core_inputs.doublings(MetaLAOptions().decay_normalizer), **constants}
    constants = {arg: value for arg, value in constants.items() if arg in fn.arg_names}
    # ASTSource does not apply the kernel's constexpr defaults, as a launch does
    constants.update({p.name: p.default for p in fn.params if p.has_default and p.name not in constants})
    return compile_sm90(fn, signature, constants, specialised, warps, stages, maxnreg)


def compile_sm90(fn, signature, constants, divisible_by_16, warps, stages=None, maxnreg=None):
    """Triton's full compile of `fn` for sm90: signature {arg: type}, constexpr values, and the arguments that the
    launcher would specialise as divisible by 16 (aligned pointers, sizes and strides)."""
    index = fn.arg_names.index
    constexprs = {(index(arg),): value for arg, value in constants.items()}
    aligned = {(index(arg),): [["tt.divisibility", 16]] for arg in divisible_by_16}
    options = {"num_warps": warps, "maxnreg": maxnreg, **({"num_stages": stages} if stages else {})}
    source = ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=aligned)
    return triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options)


def parse_blocks(text):
    """'8,64,2' -> (8, 64, 2): block arguments on a command line."""
    return tuple(int(n) for n in text.split(","))


def cuobjdump(cubin: bytes, option: str) -> str:
    """The output of the cuobjdump bundled with Triton's wheel on `cubin`, with one option (e.g. -sass)."""
    tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as file:
        file.write(cubin)
        file.flush()
        return subprocess.run([tool, option, file.name], capture_output=True, text=True).stdout


def sass_lines(cubin: bytes) -> list[str]:
    """The instruction lines of the cubin's SASS."""
    return [line for line in cuobjdump(cubin, "-sass").splitlines() if re.match(r"\s+/\*[0-9a-f]{4,}\*/", line)]


def resource_usage(cubin: bytes) -> str:
    return " ".join(re.findall(r"(?:REG|STACK):\d+", cuobjdump(cubin, "--dump-resource-usage")))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--warps", type=int, default=8)
    parser.add_argument("--stages", type=int, default=2, help="also the depth of the scan's pipelined loads")
    parser.add_argument("--bk", type=int, default=32, help="K block of the scan (the others take all of K)")
    parser.add_argument(
        "--bv", type=int, default=32, help="V block of the scan, the updates, the chunk gradients and dv"
    )
    parser.add_argument("--reverse", action="store_true", help="the scan's reverse (state gradients) direction")
    parser.add_argument("--maxnreg", type=int, help="registers per thread at most (triton.Config's maxnreg)")
    parser.add_argument("--kernels", nargs="+", help="only these kernels (default: all)")
    parser.add_argument("--accumulate", action="store_true", help="gradient kernels adding into the projection's")
    parser.add_argument("--stored", action="store_true", help="chunk_grads_kernel's STORED (the shipped backward)")
    parser.add_argument("--aug", action="store_true", help="output and chunk_grads kernels' AUG (mixer_op.CORE_AUG)")
    parser.add_argument(
        "--strong", action="store_true", help="the builds for chunks of strong decay (FACTORISED False: sub-chunks)"
    )
    args = parser.parse_args()
    common = dict(
        H=8,
        K=64,
        V=128,
        BT=64,
        PRECISION="ieee" if args.dtype == "fp32" else "tf32",
        ACCUMULATE=args.accumulate,
        STORED=args.stored,
        FACTORISED=not args.strong,
        STRONG_CHUNKS=8 if args.strong else 1,
        AUG=args.aug,
    )
    bf16 = args.dtype == "bf16"
    blocks = [
        ("state_updates_kernel", dict(BK=64, BV=args.bv)),
        ("state_grad_updates_kernel", dict(BK=64, BV=args.bv)),
        ("scan_kernel", dict(BK=args.bk, BV=args.bv, REVERSE=args.reverse, STAGES=args.stages)),
        ("output_kernel", dict(BK=64, BV=128, BF16=bf16)),
        ("chunk_grads_kernel", dict(BK=64, BV=args.bv, BF16=bf16)),
        ("chunk_dv_kernel", dict(BK=64, BV=args.bv, BF16=bf16)),
        ("decay_rows_kernel", dict(BK=64)),
    ]
    for name, block in blocks:
        if args.kernels and name not in args.kernels:
            continue
        start = time.perf_counter()
        compiled = build(name, args.dtype, args.warps, args.stages, {**common, **block}, args.maxnreg)
        seconds = time.perf_counter() - start
        usage = f"{resource_usage(compiled.asm['cubin'])} SHARED:{compiled.metadata.shared}"
        limit = f" maxnreg {args.maxnreg}" if args.maxnreg else ""
        print(f"{name} {args.dtype} warps {args.warps} stages {args.stages}{limit} {block}: {usage}, {seconds:.1f} s")


if __name__ == "__main__":
    main()

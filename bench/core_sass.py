"""The order of a core kernel's global loads, barriers, stores and tensor-core ops in its sm90 SASS, built without a
GPU as bench/core_build.py builds it: where a load issues after a barrier, it waits for everything before that
barrier (session 22 found the decay's cumsum holding back every later load of four kernels this way).

    python bench/core_sass.py chunk_grads_kernel --warps 8 --stages 3 --bv 64 --accumulate [--maxnreg 168]
                              [--fast-exp] [--set K_SPLIT=2 ...]

Prints the build's registers and spills, its instruction count, and runs of LDG / LDGSTS / BAR / HGMMA / STG ... as
NAMExCOUNT@INDEX (index of the run's first instruction). Shapes as core_build.py's (H=8, K=64, V=128, chunks of 64),
bf16, the stored decay rows, the factorised form.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from neox_metala.ops import metala_core_triton  # noqa: E402

# before core_build imports the kernels, which read it
metala_core_triton.FAST_EXP = "--fast-exp" in sys.argv
import core_build  # noqa: E402

MARKED = ("LDGSTS", "LDGDEPBAR", "LDG", "STG", "BAR", "HGMMA", "HMMA", "DEPBAR", "BRA", "WARPSYNC", "EXIT")


sass = core_build.sass_lines  # the instruction lines of a cubin's SASS


def runs(lines: list[str]) -> str:
    """'LDGx20@95 BARx1@221 ...': consecutive marked instructions of one kind, counted, at their first index."""
    out, current, count, start = [], None, 0, 0
    for index, line in enumerate(lines):
        op = re.search(r"\*/\s+(?:@!?U?P\w+\s+)?([A-Z0-9_]+)", line)
        name = next((m for m in MARKED if op and op.group(1).startswith(m)), None)
        if name is None:
            continue
        if name == current:
            count += 1
            continue
        if current:
            out.append(f"{current}x{count}@{start}")
        current, count, start = name, 1, index
    if current:
        out.append(f"{current}x{count}@{start}")
    return " ".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kernel", choices=sorted(core_build.POINTERS))
    parser.add_argument("--warps", type=int, default=4)
    parser.add_argument("--stages", type=int, default=1)
    parser.add_argument("--bv", type=int, default=128)
    parser.add_argument("--maxnreg", type=int)
    parser.add_argument("--accumulate", action="store_true")
    parser.add_argument("--fast-exp", action="store_true", help="metala_core_triton.FAST_EXP on")
    parser.add_argument("--set", nargs="+", default=[], help="NAME=INT constexprs (V_STEPS=2, K_SPLIT=2, ...)")
    args = parser.parse_args()
    constants = dict(H=8, K=64, V=128, BT=64, BK=64, BV=args.bv, PRECISION="tf32", BF16=True)
    constants.update(ACCUMULATE=args.accumulate, STORED=True, FACTORISED=True)
    constants.update({name: int(value) for name, value in (item.split("=") for item in args.set)})
    compiled = core_build.build(args.kernel, "bf16", args.warps, args.stages, constants, args.maxnreg)
    lines = sass(compiled.asm["cubin"])
    print(f"{core_build.resource_usage(compiled.asm['cubin'])}, {len(lines)} instructions")
    print(runs(lines))


if __name__ == "__main__":
    main()

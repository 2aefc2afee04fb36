"""Where one of MetaLA's core kernels spends its instructions and stalls, by line of its Triton source: an Nsight
Compute source page (SASS rows, `ncu --page source --csv --print-source sass`, e.g. on bench/core_ncu.py) read
against a local sm90 build of the same kernel and configuration (bench/core_build.py, no GPU needed), whose line
table (`nvdisasm -gi`) names each SASS row's source line. The build must be the one that ran: the script checks that
the two have the same number of instructions (a kernel's configuration is in its autotuner's choice; ncu's launch
statistics give its warps and registers).

    python bench/ncu_lines.py PAGE.csv chunk_grads_kernel --warps 8 --stages 1 --bv 64 --stored [--heads 16]

Prints the source lines with the largest shares of executed instructions and of stall samples. Session 19 (H200,
B32 T2048 H16 bf16): the qk-gradient kernel's reverse cumsum along the chunk (Triton's associative scan) took 16% of
its instructions, the two −expm1 of the decay 15%, the factorised form's exponentials 13%.
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import re
import subprocess
import sys
import tempfile

import triton

sys.path.insert(0, os.path.dirname(__file__))
import core_build  # noqa: E402


def page_rows(path: str, kernel: str) -> list[dict]:
    """The SASS rows of the first section of `kernel` in an ncu source page CSV (one section per profiled launch)."""
    lines = open(path).read().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith('"Kernel Name"')] + [len(lines)]
    for start, end in zip(starts, starts[1:]):
        if next(csv.reader([lines[start]]))[1] == kernel:
            rows = list(csv.reader(lines[start + 1 : end]))
            return [dict(zip(rows[0], row)) for row in rows[1:] if len(row) >= len(rows[0])]
    raise SystemExit(f"{path}: no section of {kernel}")


def source_lines(cubin: bytes) -> list[str]:
    """file:line of each SASS instruction of a cubin, in order (the innermost line where calls were inlined)."""
    tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "nvdisasm")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as file:
        file.write(cubin)
        file.flush()
        listing = subprocess.run([tool, "-c", "-gi", file.name], capture_output=True, text=True, check=True).stdout
    current, located = "?", []
    for line in listing.splitlines():
        match = re.match(r'\s*//## File "([^"]+)", line (\d+)(.*)', line)
        if match:
            if "inlined at" not in match.group(3):
                current = f"{os.path.basename(match.group(1))}:{match.group(2)}"
        elif re.match(r"\s*/\*[0-9a-f]{4,}\*/", line):
            located.append(current)
    return located


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("page", help="ncu source page, CSV")
    parser.add_argument("kernel", help="e.g. chunk_grads_kernel")
    parser.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--warps", type=int, default=8)
    parser.add_argument("--stages", type=int, default=1)
    parser.add_argument("--bv", type=int, default=64)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--maxnreg", type=int)
    parser.add_argument("--stored", action="store_true", help="STORED (the shipped backward)")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    constants = dict(
        H=args.heads, K=64, V=128, BT=64, BK=64, BV=args.bv, BF16=args.dtype == "bf16", ACCUMULATE=False,
        PRECISION="ieee" if args.dtype == "fp32" else "tf32", STORED=args.stored,
    )  # fmt: skip
    compiled = core_build.build(args.kernel, args.dtype, args.warps, args.stages, constants, args.maxnreg)
    located, rows = source_lines(compiled.asm["cubin"]), page_rows(args.page, args.kernel)
    if len(located) != len(rows):
        raise SystemExit(f"the local build has {len(located)} instructions, the profiled one {len(rows)}: not the same")
    number = lambda text: float(text.replace(",", "") or 0)  # noqa: E731
    executed, stalls = collections.Counter(), collections.Counter()
    for where, row in zip(located, rows):
        executed[where] += number(row["Instructions Executed"])
        stalls[where] += number(row["Warp Stall Sampling (All Samples)"])
    total_executed, total_stalls = sum(executed.values()), sum(stalls.values())
    summary = f"{len(rows)} instructions, {total_executed:.0f} executed (warps), {total_stalls:.0f} stall samples"
    print(f"{args.kernel}: {summary}")
    for where, count in executed.most_common(args.top):
        print(f"  {where:40s} executed {count / total_executed:6.1%}   stalls {stalls[where] / total_stalls:6.1%}")


if __name__ == "__main__":
    main()

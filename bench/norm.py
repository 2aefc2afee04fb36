"""The block's residual add and RMS norm: ops/rms_norm_op.py's op (one Triton kernel each way, the scale's gradient
summed in registers) against the same math compiled by torch.compile (inductor's kernels, what a compiled block ran
before), forward + backward of x, the residual and the scale, bf16, on a GPU.

    python bench/norm.py [--cases 16384x1024 ...] [--runs 30]        # ROWSxHIDDEN (rows = B·T)
    TRITON_INTERPRET=1 python bench/norm.py --smoke                  # the logic on the CPU, tiny shape

One line per case: median ms of each path (CUDA events, L2 flushed before every run), the speed-up and how far the
op's outputs are from the compiled path's. Then, on the first case, block candidates of the two kernels alone
against their byte floors (forward reads x and the residual and writes h and y: 4 elements per channel and row;
backward reads h, dy and the residual's gradient and writes dh: 4) over the copy bandwidth measured here.
"""

from __future__ import annotations

import functools
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from neox_metala.ops import rms_norm_op  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from kernel_timing import copy_bandwidth, median_ms, parse_args, relative_differences  # noqa: E402

CUDA = torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1"
EPS = 1e-8
# (rows per tile, warps) at a channel block of the next power of two ≥ D
CANDIDATES = [(1, 4), (2, 4), (4, 4), (4, 8), (8, 4), (8, 8), (16, 8), (32, 8)]


def compiled_block_code(x, residual, weight):  # layers/norms.py before the op (the block's add, then the norm)
    h = x + residual
    wide = h.float()
    return h, (wide * torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + EPS) * weight.float()).to(h.dtype)


def op(x, residual, weight):
    return rms_norm_op.add_rms_norm(x, residual, weight, EPS)


def draw(rows, hidden, dtype, device):
    gen = torch.Generator().manual_seed(0)
    x, residual, d_h, d_y = torch.randn(4, rows, hidden, generator=gen).to(device, dtype)
    weight = (1 + 0.1 * torch.randn(hidden, generator=gen)).to(device, dtype)
    return x, residual, weight, d_h, d_y


def forward_backward(norm):
    def call(x, residual, weight, d_h, d_y):
        leaves = [t.detach().requires_grad_() for t in (x, residual, weight)]
        outputs = norm(*leaves)
        return (*outputs, *torch.autograd.grad(outputs, leaves, (d_h, d_y)))

    return call


def run_case(case, dtype, device, args, paths):
    inputs = draw(*case, dtype, device)
    times = {name: median_ms(lambda c=call: forward_backward(c)(*inputs), args.warmup, args.runs, CUDA)
             for name, call in paths.items()}  # fmt: skip
    differences = relative_differences(
        ("h", "y", "dx", "dresidual", "dscale"),
        forward_backward(paths["op"])(*inputs),
        forward_backward(paths["compiled"])(*inputs),
    )
    print(
        f"NORM rows {case[0]} hidden {case[1]}: compiled {times['compiled']:.3f} ms, op {times['op']:.3f} ms, "
        f"speed-up {times['compiled'] / times['op']:.2f}x; rel diff "
        + ", ".join(f"{name} {value:.1e}" for name, value in differences.items()),
        flush=True,
    )


def sweep_blocks(case, dtype, device, bandwidth, args):
    x, residual, weight, d_h, d_y = draw(*case, dtype, device)
    floor_ms = 4 * x.numel() * x.element_size() / bandwidth * 1e3
    block_d = 1 << (case[1] - 1).bit_length()
    timing = (args.warmup, args.runs, CUDA)
    print(
        f"default blocks: forward {rms_norm_op._blocks(case[1], rms_norm_op.FORWARD_TILE)}, backward "
        f"{rms_norm_op._blocks(case[1], rms_norm_op.BACKWARD_TILE)}",
        flush=True,
    )
    for rows, warps in CANDIDATES[: 1 if args.smoke else None]:
        blocks = (rows, block_d, warps)
        forward = median_ms(lambda b=blocks: rms_norm_op.forward_triton(x, residual, weight, EPS, b), *timing)
        backward = median_ms(lambda b=blocks: rms_norm_op.backward_triton(x, d_y, d_h, weight, EPS, b), *timing)
        print(
            f"blocks {blocks}: forward {forward:.4f} ms ({forward / floor_ms:.2f}x floor), backward {backward:.4f} ms "
            f"({backward / floor_ms:.2f}x floor)",
            flush=True,
        )


def main():
    args = parse_args(__doc__, ["16384x1024", "16384x2048"], "ROWSxHIDDEN")
    if args.smoke:
        cases, dtype, device, backend = [(37, 24)], torch.float32, "cpu", "eager"
    else:
        cases = [tuple(map(int, case.split("x"))) for case in args.cases]
        dtype, device, backend = torch.bfloat16, "cuda", "inductor"
    compile_it = functools.partial(torch.compile, backend=backend, dynamic=False)
    # --smoke: CPU tensors take the op's PyTorch code; the sweep runs the interpreted kernels
    paths = {"compiled": compile_it(compiled_block_code), "op": compile_it(op)}
    bandwidth = copy_bandwidth(CUDA)
    print(f"copy bandwidth {bandwidth / 1e9:.0f} GB/s", flush=True)
    for case in cases:
        run_case(case, dtype, device, args, paths)
    sweep_blocks(cases[0], dtype, device, bandwidth, args)


if __name__ == "__main__":
    main()

"""The SwiGLU MLP's activation and down projection: ops/swiglu_op.py's one op (Triton activation kernels between
the GEMMs, the product formed again in the backward) against the same math compiled by torch.compile (inductor's
kernels, what a compiled block ran before), forward + backward of h and the weight, bf16, on a GPU.

    python bench/swiglu.py [--cases 16384x2816x1024 ...] [--runs 30]      # ROWSxWIDTHxHIDDEN (rows = B·T)
    TRITON_INTERPRET=1 python bench/swiglu.py --smoke                      # the logic on the CPU, tiny shape

One line per case: median ms of each path (CUDA events, L2 flushed before every run), the bytes each keeps from
its forward for its backward, the speed-up and how far the op's outputs are from the compiled path's. Then, on the
first case, each block candidate of the two kernels alone against its byte floor (forward reads h and writes y: 3W
elements per row; backward reads h and dy and writes dh and y: 6W) over the copy bandwidth measured here.
"""

from __future__ import annotations

import functools
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from neox_metala.ops import swiglu_op  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from kernel_timing import copy_bandwidth, median_ms, parse_args, relative_differences  # noqa: E402

CUDA = torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1"
CANDIDATES = [  # (rows, channels, warps)
    (8, 256, 4),
    (4, 512, 4),
    (16, 256, 8),
    (16, 128, 4),
    (32, 128, 8),
    (2, 1024, 4),
    (8, 512, 8),
    (4, 1024, 8),
    (1, 2048, 8),
    (16, 512, 8),
]


def plain(h, weight):
    gate, up = h.chunk(2, dim=-1)
    return (F.silu(gate) * up) @ weight.t()


def draw(rows, width, hidden, dtype, device):
    gen = torch.Generator().manual_seed(0)
    h = (torch.randn(rows, 2 * width, generator=gen) * 2.0).to(device, dtype)
    weight = (torch.randn(hidden, width, generator=gen) / width**0.5).to(device, dtype)
    d_out = torch.randn(rows, hidden, generator=gen).to(device, dtype)
    return h, weight, d_out


def forward_backward(mlp_down):
    def call(h, weight, d_out):
        leaves = [h.detach().requires_grad_(), weight.detach().requires_grad_()]
        out = mlp_down(*leaves)
        return (out, *torch.autograd.grad(out, leaves, d_out))

    return call


def kept_bytes(mlp_down, h, weight) -> int:
    """Device memory the forward leaves allocated for its backward, beyond its output."""
    leaves = [h.detach().requires_grad_(), weight.detach().requires_grad_()]
    mlp_down(*leaves)  # compiled and warm
    if not CUDA:
        return 0
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    out = mlp_down(*leaves)
    kept = torch.cuda.memory_allocated() - before - out.numel() * out.element_size()
    del out
    return kept


def run_case(case, dtype, device, args, paths):
    inputs = draw(*case, dtype, device)
    times = {name: median_ms(lambda c=call: forward_backward(c)(*inputs), args.warmup, args.runs, CUDA)
             for name, call in paths.items()}  # fmt: skip
    kept = {name: kept_bytes(call, *inputs[:2]) for name, call in paths.items()}
    differences = relative_differences(
        ("out", "dh", "dweight"), forward_backward(paths["op"])(*inputs), forward_backward(paths["compiled"])(*inputs)
    )
    print(
        f"SWIGLU rows {case[0]} width {case[1]} hidden {case[2]}: compiled {times['compiled']:.3f} ms, op "
        f"{times['op']:.3f} ms, speed-up {times['compiled'] / times['op']:.2f}x; kept for backward: compiled "
        f"{kept['compiled'] / 2**20:.1f} MiB, op {kept['op'] / 2**20:.1f} MiB; rel diff "
        + ", ".join(f"{name} {value:.1e}" for name, value in differences.items()),
        flush=True,
    )


def sweep_blocks(case, dtype, device, bandwidth, args):
    h, weight, d_out = draw(*case, dtype, device)
    dy = d_out @ weight
    unit_ms = dy.numel() * dy.element_size() / bandwidth * 1e3  # W elements per row
    for blocks in CANDIDATES[: 1 if args.smoke else None]:
        forward = median_ms(lambda b=blocks: swiglu_op.swiglu_forward_triton(h, b), args.warmup, args.runs, CUDA)
        backward = median_ms(lambda b=blocks: swiglu_op.swiglu_backward_triton(h, dy, b), args.warmup, args.runs, CUDA)
        print(
            f"blocks {blocks}: forward {forward:.3f} ms ({forward / (3 * unit_ms):.2f}x floor), backward "
            f"{backward:.3f} ms ({backward / (6 * unit_ms):.2f}x floor)",
            flush=True,
        )


def main():
    args = parse_args(__doc__, ["16384x2816x1024", "16384x5632x2048"], "ROWSxWIDTHxHIDDEN")
    if args.smoke:
        cases, dtype, device, backend = [(37, 24, 16)], torch.float32, "cpu", "eager"
    else:
        cases = [tuple(map(int, case.split("x"))) for case in args.cases]
        dtype, device, backend = torch.bfloat16, "cuda", "inductor"
    compile_it = functools.partial(torch.compile, backend=backend, dynamic=False)
    # --smoke: CPU tensors take the op's CPU kernel (PyTorch); the sweep runs the interpreted kernels
    paths = {"compiled": compile_it(plain), "op": compile_it(swiglu_op.swiglu_linear)}
    bandwidth = copy_bandwidth(CUDA)
    print(f"copy bandwidth {bandwidth / 1e9:.0f} GB/s", flush=True)
    for case in cases:
        run_case(case, dtype, device, args, paths)
    sweep_blocks(cases[0], dtype, device, bandwidth, args)


if __name__ == "__main__":
    main()

"""The short convolution + SiLU alone, forward + backward per call: `short_conv_shifted` compiled by torch.compile
(as a compiled block runs it) against MetaLA's Triton kernels as custom ops (ops/short_conv_op.py), bf16, W=4, x
a (seq, batch) transpose as the layer hands it.

    python bench/conv.py [--cases 32x2048x2048 8x2048x1024] [--runs 30] [--warmup 5]
    TRITON_INTERPRET=1 python bench/conv.py --smoke     # the same logic on the CPU, tiny fp32 shape, no GPU

One line per case: median ms of each (CUDA events, L2 flushed before every run), the byte floor (forward reads x
and writes y, backward reads x and dy and writes dx: five tensors) over the copy bandwidth measured here, each
time over that floor, the speed-up, and the norm-relative differences of y, dx and dweight. Then, for the first
case (by default the full block's shape, where the backward's two kernels before took 0.292 + 0.190 ms), each
kernel alone at a few block shapes (tokens, channels, warps, steps, stages; the first of each list is
ops/short_conv_op.py's default), each over its own bytes (forward 2 tensors; backward 3: x, dy, dx), with its
differences from the PyTorch math in fp32 (a wrong build is not a fast one). The backward is timed as
conv_backward_triton runs it, its kernel and the sum of its weight-gradient partials (whose size depends on the
blocks): the lines to pick the defaults from.
"""

from __future__ import annotations

import functools
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from neox_metala.ops import short_conv_op  # noqa: E402
from neox_metala.ops.causal_conv import short_conv_shifted  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from kernel_timing import copy_bandwidth, median_ms, parse_args, relative_differences  # noqa: E402

CUDA = torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1"

WIDTH = 4
# (tokens per step, channels, warps, steps, stages) of both kernels, the default first; all build for sm90 without
# spills (bench/conv_build.py --candidates, triton 3.6, bf16; registers after each). Each thread holds BC / (32 ·
# warps) channels of a token row: 4 (8-byte bf16 loads) in the backward at 96-182 registers; 8 (16-byte loads) take
# 168-208 there and 80-106 in the forward, 2 take 64-91; the forward's 4 take 48-68. More stages keep later steps'
# rows in flight (cp.async) while a step computes; shorter spans (tokens · steps) make more programs but more halo
# rows, and in backward more partials.
# Session 47 (H200, B32 T2048 C2048 bf16, `--cases 32x2048x2048`, one run each): ms after each; none is more than 3.3%
# faster than the defaults, whose 0.155 + 0.243 ms are 1.2x / 1.3x their bytes.
FORWARD_BLOCKS = [  # the first: 0.16 ms in the block (call 3, session 24)
    (4, 256, 2, 32, 3),  # 61 registers; 0.155 ms
    (4, 256, 2, 32, 1),  # 48; 0.165
    (4, 256, 2, 64, 3),  # 61; 0.161
    (8, 256, 2, 16, 3),  # 68; 0.150
    (8, 256, 2, 16, 1),  # 61; 0.150
    (8, 128, 2, 16, 3),  # 48; 0.170
    (8, 512, 4, 16, 3),  # 68; 0.150
    (4, 512, 2, 32, 3),  # 106; 0.169 (8 channels per thread from here on)
    (4, 512, 2, 16, 3),  # 106; 0.182
    (2, 512, 2, 64, 3),  # 80; 0.284
    (4, 1024, 4, 32, 3),  # 106; 0.170
    (4, 512, 2, 32, 2),  # 80; 0.181
]
BACKWARD_BLOCKS = [
    (4, 256, 2, 32, 3),  # 96; 0.243 ms on an H200 at B32 T2048 C2048 (ops/short_conv_op.py has the sweep)
    (8, 256, 2, 16, 1),  # 140 registers
    (8, 256, 2, 16, 2),  # 182
    (8, 256, 2, 16, 3),  # 150
    (8, 256, 2, 8, 1),  # 140
    (4, 256, 2, 32, 1),  # 96
    (8, 128, 2, 16, 1),  # 64
    (8, 128, 2, 16, 3),  # 91
    (8, 512, 4, 16, 1),  # 144
    (8, 512, 4, 16, 3),  # 146
    (16, 512, 4, 8, 1),  # 182
    (4, 512, 2, 32, 3),  # 168; 0.238 (8 channels per thread)
    (2, 512, 2, 64, 3),  # 208; 0.419 (8 channels per thread)
    (4, 256, 2, 64, 3),  # 96; 0.235
    (4, 256, 2, 16, 3),  # 96; 0.261
    (2, 256, 2, 64, 3),  # 91; 0.315
]


def draw(batch, seq, channels, dtype, device):
    """x and dy as (seq, batch, channels) tensors seen batch-first (the layer's transpose), the weight in fp32."""
    gen = torch.Generator(device=device).manual_seed(0)
    x, d_out = (torch.randn(seq, batch, channels, device=device, generator=gen).to(dtype) for _ in range(2))
    weight = torch.randn(channels, WIDTH, device=device, generator=gen) * 0.5
    return x.transpose(0, 1), weight, d_out.transpose(0, 1)


def forward_backward(conv):
    def call(x, weight, d_out):
        leaves = (x.detach().requires_grad_(), weight.detach().requires_grad_())
        y = conv(*leaves)
        return (y, *torch.autograd.grad(y, leaves, d_out))

    return call


def triton_call(smoke):
    if not smoke:
        return forward_backward(short_conv_op.short_conv_silu)

    def launchers(x, weight, d_out):  # the op's CUDA path, on CPU tensors (its CPU kernel is PyTorch)
        return (short_conv_op.conv_forward_triton(x, weight), *short_conv_op.conv_backward_triton(x, weight, d_out))

    return launchers


def run_case(case, dtype, device, bandwidth, args, compiled):
    inputs = draw(*case, dtype, device)
    mine_call = triton_call(args.smoke)
    shifted_ms = median_ms(lambda: compiled(*inputs), args.warmup, args.runs, CUDA)
    mine_ms = median_ms(lambda: mine_call(*inputs), args.warmup, args.runs, CUDA)
    floor = 5 * inputs[0].numel() * inputs[0].element_size() / bandwidth * 1e3
    differences = relative_differences(("y", "dx", "dweight"), mine_call(*inputs), compiled(*inputs))
    batch, seq, channels = case
    print(
        f"CONV B{batch} T{seq} C{channels} W{WIDTH}: shifted+compile {shifted_ms:.3f} ms, triton {mine_ms:.3f} ms, "
        f"floor {floor:.3f} ms (shifted {shifted_ms / floor:.1f}x, triton {mine_ms / floor:.1f}x), "
        f"speed-up {shifted_ms / mine_ms:.2f}x, rel diff "
        + ", ".join(f"{name} {value:.1e}" for name, value in differences.items()),
        flush=True,
    )


def sweep_blocks(case, dtype, device, bandwidth, args):
    x, weight, d_out = draw(*case, dtype, device)
    tensor_ms = x.numel() * x.element_size() / bandwidth * 1e3
    count = 1 if args.smoke else None

    def report(name, call, tensors, outputs, expected):
        ms = median_ms(call, args.warmup, args.runs, CUDA)
        differences = relative_differences(outputs, call(), expected)
        print(
            f"{name}: {ms:.3f} ms, floor ratio {ms / (tensors * tensor_ms):.1f}x"
            + "".join(f", {key} rel diff {value:.1e}" for key, value in differences.items()),
            flush=True,
        )

    def forward(*blocks):
        return (short_conv_op.conv_forward_triton(x, weight, *blocks),)

    expected = (short_conv_op.conv_forward_torch(x, weight),)  # the same math in fp32
    for *blocks, steps, stages in FORWARD_BLOCKS[:count]:
        call = functools.partial(forward, tuple(blocks), steps, stages)
        report(f"forward blocks {tuple(blocks)} steps {steps} stages {stages}", call, 2, ("y",), expected)
    expected = short_conv_op.conv_backward_torch(x, weight, d_out)
    for *blocks, steps, stages in BACKWARD_BLOCKS[:count]:
        call = functools.partial(short_conv_op.conv_backward_triton, x, weight, d_out, tuple(blocks), steps, stages)
        report(f"backward blocks {tuple(blocks)} steps {steps} stages {stages}", call, 3, ("dx", "dweight"), expected)


def main():
    args = parse_args(__doc__, ["32x2048x2048", "8x2048x1024", "2x8192x1024"], "BATCHxSEQxCHANNELS")
    if args.smoke:
        cases, dtype, device, backend = [(2, 37, 160)], torch.float32, "cpu", "eager"  # no C++ toolchain needed
    else:
        cases = [tuple(map(int, case.split("x"))) for case in args.cases]
        dtype, device, backend = torch.bfloat16, "cuda", "inductor"
    compiled = forward_backward(torch.compile(short_conv_shifted, backend=backend, dynamic=False))
    bandwidth = copy_bandwidth(CUDA)
    print(f"copy bandwidth {bandwidth / 1e9:.0f} GB/s", flush=True)
    for case in cases:
        run_case(case, dtype, device, bandwidth, args, compiled)
    sweep_blocks(cases[0], dtype, device, bandwidth, args)


if __name__ == "__main__":
    main()

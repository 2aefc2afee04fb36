"""MetaLA's epilogue alone, forward + backward per call: the PyTorch epilogue compiled by torch.compile (what a
compiled block runs with metala_epilogue_kernel: compiled) against MetaLA's Triton kernels as custom ops
(ops/epilogue_op.py, metala_epilogue_kernel: triton), bf16, with the inputs as the layer hands them: q, decay logits,
v, gate strided views of one (B, T, 3W) projection, o contiguous, y returned (T, B, W) for the out projection, dy
its gradient; gradients of o, the projection (the four parts' gradients in one buffer, as the layer's input
projection reads them), gate_bias and aug_balance.

    python bench/epilogue.py [--cases 8x2048x8x128 2x8192x8x128] [--runs 30] [--warmup 5]
    TRITON_INTERPRET=1 python bench/epilogue.py --smoke     # the same logic on the CPU, tiny fp32 shape, no GPU

One line per case: median ms of each (CUDA events, L2 flushed before every run), the byte floor (forward reads o,
q, x, v, g and writes y; backward reads dy and those five and writes their five gradients: 28·V bytes per token and
head in bf16 at K = V/2) over the copy bandwidth measured here, each time over that floor, the speed-up, and the
norm-relative differences of y and the gradients. Then, for the first case, each kernel alone at a few blocks
(tokens, warps; the backward's steps and pipeline stages too; the first of each list is ops/epilogue_op.py's
default) over its own bytes: the lines to pick the defaults from.
"""

from __future__ import annotations

import functools
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from neox_metala.ops import epilogue_op, metala  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from kernel_timing import copy_bandwidth, median_ms, parse_args, relative_differences  # noqa: E402

CUDA = torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1"
NORMALIZER, EPS = 16.0, 1e-5
FORWARD_BLOCKS = [(16, 4), (8, 4), (32, 8), (16, 8), (8, 2), (32, 4), (64, 8), (4, 2)]
# (tokens, warps, steps, pipeline stages of the step loop[, register cap]); the first is ops/epilogue_op.py's
# default. With the self-augmentation's dot product stored by the forward (session 17) the sm90 bf16 builds
# (bench/epilogue_build.py --stages 3) take 150 registers at (8, 4) (168 before), 128 without spills under a
# 128 cap (four 4-warp programs per SM), 113 at (8, 8), 96 at (4, 4), 156 at (16, 8).
BACKWARD_BLOCKS = [
    (8, 4, 16, 3, 128), (8, 4, 16, 3), (8, 4, 32, 3, 128), (8, 8, 16, 3), (8, 8, 16, 2), (4, 4, 16, 3),
    (4, 4, 32, 3), (16, 8, 16, 3), (4, 2, 16, 3), (8, 4, 16, 2), (8, 8, 32, 3),
]  # fmt: skip


def draw(batch, seq, heads, head_v_dim, dtype, device):
    """o, the (B, T, 3W) projection, gate_bias, aug_balance (fp32 parameters) and dy as a (T, B, W) tensor."""
    gen = torch.Generator(device=device).manual_seed(0)
    width = heads * head_v_dim

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, device=device, generator=gen) * scale).to(dtype)

    o, projected = randn(batch, seq, heads, head_v_dim), randn(batch, seq, 3 * width)
    gate_bias = torch.randn(width, device=device, generator=gen) * 0.5
    aug_balance = torch.randn(width // 2, device=device, generator=gen)
    return o, projected, gate_bias, aug_balance, randn(seq, batch, width)


def parts(projected, heads):
    width = projected.shape[-1] // 3
    split = projected.split((width // 2, width // 2, width, width), dim=-1)
    return [metala.split_heads(part, heads) for part in split]  # q, decay logits, v, gate: strided views


def compiled_epilogue(o, projected, gate_bias, aug_balance, heads):
    q, logits, v, gate = parts(projected, heads)
    key = metala.decay_and_key(logits, NORMALIZER)[1]
    y = metala.augment_norm_gate(o, q, key, v, aug_balance, gate + gate_bias.view(gate.shape[-2:]), EPS)
    return y.flatten(-2).transpose(0, 1).contiguous()  # (T, B, W): the out projection's input


def triton_epilogue(o, projected, gate_bias, aug_balance, heads):
    q, logits, v, gate = parts(projected, heads)
    y = epilogue_op.augment_norm_gate_op(o, q, logits, v, gate, gate_bias, aug_balance, NORMALIZER, EPS, True)
    return y.flatten(-2).transpose(0, 1).contiguous()  # already laid out (T, B, W): no copy


def forward_backward(epilogue):
    def call(heads, o, projected, gate_bias, aug_balance, d_out):
        leaves = [t.detach().requires_grad_() for t in (o, projected, gate_bias, aug_balance)]
        y = epilogue(*leaves, heads)
        return (y, *torch.autograd.grad(y, leaves, d_out))

    return call


def run_case(case, dtype, device, bandwidth, args, calls):
    batch, seq, heads, head_v_dim = case
    inputs = draw(*case, dtype, device)
    compiled_call, triton_call = (functools.partial(call, heads) for call in calls)
    compiled_ms = median_ms(lambda: compiled_call(*inputs), args.warmup, args.runs, CUDA)
    triton_ms = median_ms(lambda: triton_call(*inputs), args.warmup, args.runs, CUDA)
    # 14·V elements per token and head: forward reads 4·V (o, v, g; q and x of K = V/2) and writes y, backward reads
    # those and dy and writes 4·V (do, dq, dx, dv, dg)
    floor = 14 * inputs[0].numel() * inputs[0].element_size() / bandwidth * 1e3
    names = ("y", "do", "dprojected", "dgate_bias", "daug_balance")
    differences = relative_differences(names, triton_call(*inputs), compiled_call(*inputs))
    print(
        f"EPILOGUE B{batch} T{seq} H{heads} V{head_v_dim}: compiled {compiled_ms:.3f} ms, triton {triton_ms:.3f} ms, "
        f"floor {floor:.3f} ms (compiled {compiled_ms / floor:.1f}x, triton {triton_ms / floor:.1f}x), "
        f"speed-up {compiled_ms / triton_ms:.2f}x, rel diff "
        + ", ".join(f"{name} {value:.1e}" for name, value in differences.items()),
        flush=True,
    )


def sweep_blocks(case, dtype, device, bandwidth, args):
    o, projected, gate_bias, aug_balance, d_out = draw(*case, dtype, device)
    q, logits, v, gate = parts(projected, case[2])
    d_out = d_out.unflatten(-1, (case[2], -1)).transpose(0, 1)  # (B, T, H, V) view of the (T, B, W) gradient
    # elements per token and head over V: forward 5 (o, q, x, v, g read; y written), backward 9
    unit_ms = o.numel() * o.element_size() / bandwidth * 1e3
    count = 1 if args.smoke else None
    inputs = (o, q, logits, v, gate, gate_bias, aug_balance)

    def report(name, call, units):
        ms = median_ms(call, args.warmup, args.runs, CUDA)
        print(f"{name}: {ms:.3f} ms, floor ratio {ms / (units * unit_ms):.1f}x", flush=True)

    for blocks in FORWARD_BLOCKS[:count]:
        call = functools.partial(epilogue_op.epilogue_forward_triton, *inputs, NORMALIZER, EPS, True, blocks)
        report(f"forward blocks {blocks}", call, 5)
    _, stats = epilogue_op.epilogue_forward_triton(*inputs, NORMALIZER, EPS, True)
    for block_t, warps, steps, stages, *cap in BACKWARD_BLOCKS[:count]:
        call = functools.partial(
            epilogue_op.epilogue_backward_triton, d_out, *inputs, stats, NORMALIZER, (block_t, warps, *cap),
            steps, stages=stages,
        )  # fmt: skip
        report(f"backward blocks {(block_t, warps, *cap)} steps {steps} stages {stages}", call, 9)


def main():
    args = parse_args(__doc__, ["8x2048x8x128", "2x8192x8x128"], "BATCHxSEQxHEADSxHEAD_V_DIM")
    if args.smoke:
        cases, dtype, device, backend = [(2, 37, 3, 24)], torch.float32, "cpu", "eager"  # no C++ toolchain needed
    else:
        cases = [tuple(map(int, case.split("x"))) for case in args.cases]
        dtype, device, backend = torch.bfloat16, "cuda", "inductor"
    compile_it = functools.partial(torch.compile, backend=backend, dynamic=False)
    # --smoke: on CPU tensors the op runs its CPU kernel (PyTorch), so there the whole-path line checks the logic and
    # the sweep runs the interpreted kernels
    calls = (forward_backward(compile_it(compiled_epilogue)), forward_backward(compile_it(triton_epilogue)))
    bandwidth = copy_bandwidth(CUDA)
    print(f"copy bandwidth {bandwidth / 1e9:.0f} GB/s", flush=True)
    for case in cases:
        run_case(case, dtype, device, bandwidth, args, calls)
    sweep_blocks(cases[0], dtype, device, bandwidth, args)


if __name__ == "__main__":
    main()

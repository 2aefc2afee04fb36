"""The loss's softmax cross-entropy over one chunk of logits: ops/cross_entropy_op.py's one kernel (per-row losses,
the gradient written over the logits) against the compiled PyTorch steps that model/loss.py runs without it (the
row maxima and sums, the loss, the gradient: inductor's kernels), bf16, on a GPU. The GEMMs around it are the same
in both and not timed.

    python bench/loss.py [--cases 2048x50304 ...] [--runs 30]        # ROWSxVOCAB (rows: the loss's chunk)
    TRITON_INTERPRET=1 python bench/loss.py --smoke                 # the logic on the CPU, tiny shape

One line per case: median ms of each path (CUDA events, L2 flushed before every run), the speed-up, the kernel
against its byte floor (read the logits, read and write them again: 3 × rows × V × 2 bytes; the second read may
come from L2, so the floor is an upper bound of what a row-at-a-time kernel needs) and the largest differences;
then the kernel at each (block, warps) of BLOCKS.
"""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from neox_metala.model import loss as loss_module  # noqa: E402
from neox_metala.ops import cross_entropy_op  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from kernel_timing import copy_bandwidth, median_ms, parse_args, relative_differences  # noqa: E402

CUDA = torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1"
# (logits per loop step, warps): the default first. Fewer rows in flight (more warps per program) may keep a row in L2
# between the kernel's two reads of it (~100 KB a row at 50k bf16; an H200's L2 holds 50 MB)
BLOCKS = [(2048, 8), (2048, 4), (4096, 16), (4096, 8), (1024, 4), (1024, 8)]


def draw(rows, vocab, dtype, device):
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(rows, vocab, generator=gen) * 3.0).to(device, dtype)
    labels = torch.randint(0, vocab, (rows,), generator=gen).to(device)
    weights = torch.full((rows,), 1.0 / rows, device=device)
    return logits, labels, weights


def steps_path(steps):
    def call(logits, labels, weights):
        maxes, target, sum_exp = steps.max_and_partials(logits, labels)
        return steps.loss(target, sum_exp, maxes, weights), steps.grad_logits(logits, maxes, sum_exp, labels, weights)

    return call


def kernel_path(logits, labels, weights, blocks=None):
    losses = torch.empty(logits.shape[0], device=logits.device)
    grad = logits.clone()  # the kernel writes over its input; the clone is timed separately and subtracted
    cross_entropy_op.cross_entropy_rows(grad, labels, weights, losses, write_grad=True, blocks=blocks)
    return losses.sum(), grad


def main():
    args = parse_args(__doc__, ["2048x50304"], "ROWSxVOCAB")
    if args.smoke:
        cases, dtype, device = [(7, 300)], torch.float32, "cpu"
    else:
        cases, dtype, device = [tuple(map(int, c.split("x"))) for c in args.cases], torch.bfloat16, "cuda"
    steps = loss_module._Steps(compile_them=CUDA)
    bandwidth = copy_bandwidth(CUDA)
    print(f"copy bandwidth {bandwidth / 1e9:.0f} GB/s", flush=True)
    for rows, vocab in cases:
        run_case(rows, vocab, dtype, device, steps, bandwidth, args)


def run_case(rows, vocab, dtype, device, steps, bandwidth, args):
    inputs = draw(rows, vocab, dtype, device)
    timing = (args.warmup, args.runs, CUDA)
    compiled = median_ms(lambda: steps_path(steps)(*inputs), *timing)
    clone = median_ms(lambda: inputs[0].clone(), *timing)
    kernel = median_ms(lambda: kernel_path(*inputs), *timing) - (clone if CUDA else 0.0)
    floor = 3 * inputs[0].numel() * inputs[0].element_size() / bandwidth * 1e3
    differences = relative_differences(("loss", "grad"), kernel_path(*inputs), steps_path(steps)(*inputs))
    print(
        f"LOSS rows {rows} vocab {vocab}: compiled steps {compiled:.3f} ms, kernel {kernel:.3f} ms "
        f"({kernel / floor:.2f}x its floor {floor:.3f} ms), speed-up {compiled / kernel:.2f}x; rel diff "
        + ", ".join(f"{name} {value:.1e}" for name, value in differences.items()),
        flush=True,
    )
    for blocks in BLOCKS[: 1 if args.smoke else None]:
        ms = median_ms(lambda b=blocks: kernel_path(*inputs, b), *timing) - (clone if CUDA else 0.0)
        print(f"blocks {blocks}: {ms:.3f} ms ({ms / floor:.2f}x floor)", flush=True)


if __name__ == "__main__":
    main()

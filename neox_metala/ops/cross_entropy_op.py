"""The loss's softmax cross-entropy of one chunk of logits as one Triton kernel (ops/cross_entropy_kernels.py):
per-row losses and, in place of the logits, their gradient. CUDA only; model/loss.py runs its PyTorch steps
elsewhere (CPU, and vocab-parallel ranks, whose sums need an all-reduce between the passes).

Why: the compiled PyTorch steps took 8.85 ms of a 372 ms step of the 380M run on an H200 (2048 × 50,304 bf16
logits per chunk, 206 MB, 32 chunks per step); this kernel 6.04 ms (docs/benchmarks.md, session 17), at 1.23× the
time of three passes over the logits at copy bandwidth (bench/loss.py).
"""

from __future__ import annotations

import functools
import os

import torch

from .triton_launch import launch

# logits per loop step of a row (8 per thread at 8 warps), warps: bench/loss.py's sweep on an H200 (2048 × 50,304
# bf16 per chunk, session 17): 0.180 ms at (2048, 8) against 0.185 at (2048, 4), 0.182 at (4096, 16), 0.193 at
# (4096, 8) (session 16's choice) and 0.199-0.250 at 8192-16384 logits per step
BLOCK = 2048
WARPS = 8


@functools.cache
def _kernel():
    from .cross_entropy_kernels import cross_entropy_kernel

    return cross_entropy_kernel


def applies(logits: torch.Tensor) -> bool:
    """Whether the kernel runs these logits: CUDA (or the Triton interpreter, in tests), fp32 or half."""
    runs = logits.is_cuda or os.environ.get("TRITON_INTERPRET") == "1"
    return runs and logits.dtype in (torch.float32, torch.bfloat16, torch.float16)


def cross_entropy_rows(logits, labels, weights, losses, write_grad: bool, blocks=None) -> None:
    """logits (rows, V) with contiguous rows, labels (rows,) int64 in [0, V) (a label outside is not read: its
    row gets no target term, as the PyTorch steps' out-of-slice labels; the loss weighs such tokens 0), weights
    (rows,) fp32 -> losses[r] = (logsumexp(logits[r]) − logits[r, labels[r]]) · weights[r] (fp32, written into
    `losses`); with write_grad the logits are overwritten by weights[r] (softmax(logits[r]) − onehot(labels[r])).
    blocks: (logits per loop step, warps), by default (BLOCK, WARPS)."""
    rows, vocab = logits.shape
    if logits.stride(1) != 1:
        raise ValueError("cross_entropy_rows: the logits' rows must be contiguous")
    block, warps = blocks or (BLOCK, WARPS)
    if rows:
        launch(
            _kernel(), (rows,), logits, labels, weights, losses, vocab, logits.stride(0), WRITE_GRAD=write_grad,
            BV=block, num_warps=warps,
        )  # fmt: skip

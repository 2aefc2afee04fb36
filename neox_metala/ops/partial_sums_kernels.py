"""Triton kernel of the partial-sum reduction (ops/partial_sums.py launches it): the column sums of per-program
partial sums, written into one or two outputs in their dtypes.

Imports triton: only ops/partial_sums.py imports this module, and only when the kernel runs.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def sum_partials_kernel(partial, first, second, R, C, split, stride_r, BR: tl.constexpr, BC: tl.constexpr):
    """first[c] = Σ_r partial[r, c] for c < split, second[c - split] for split ≤ c < C, in fp32, stored in the
    outputs' dtypes. Each program sums its columns' rows in blocks of BR, in row order, into a (BR, BC) accumulator,
    then reduces that over its BR rows: the same order at every launch, whatever the scheduling."""
    c = tl.program_id(0) * BC + tl.arange(0, BC)
    c_mask = c < C
    acc = tl.zeros([BR, BC], dtype=tl.float32)
    for start in range(0, R, BR):
        r = start + tl.arange(0, BR)
        mask = (r < R)[:, None] & c_mask[None, :]
        acc += tl.load(partial + r[:, None].to(tl.int64) * stride_r + c[None, :], mask=mask, other=0.0)
    total = tl.sum(acc, axis=0)  # (BC,)
    tl.store(first + c, total.to(first.dtype.element_ty), mask=c < split)
    tl.store(second + (c - split), total.to(second.dtype.element_ty), mask=c_mask & (c >= split))

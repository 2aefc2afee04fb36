"""Triton kernel of the loss's softmax cross-entropy over one chunk of logits (model/loss.py launches it through
ops/cross_entropy_op.py), one program per row of V logits, fp32 math:

    pass 1  m = max(l), s = Σ exp(l − m) (online, per lane, combined at the end), t = l[label] − m
            loss = (log s − t) · w                                  (w: the token's weight; 0 for masked tokens)
    pass 2  dl = w (exp(l − m) / s − [j = label]), written over the logits in their dtype

The same numbers as the loss's compiled PyTorch steps (max, shifted target, Σ exp, the softmax's gradient), in one
read of the logits for the sums and one read and write for the gradient (the compiled steps' reduction kernel ran
at ~2.8× one read's time, their gradient kernel at ~1.45× a read and a write: session 15's profile).

Imports triton: only ops/cross_entropy_op.py imports this module, and only when the kernel runs.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def cross_entropy_kernel(logits, labels, weights, losses, V, stride, WRITE_GRAD: tl.constexpr, BV: tl.constexpr):
    row = tl.program_id(0)
    base = logits + row.to(tl.int64) * stride
    label = tl.load(labels + row)
    w = tl.load(weights + row)
    lane_max = tl.full([BV], float("-inf"), tl.float32)
    lane_sum = tl.zeros([BV], tl.float32)
    for start in range(0, V, BV):
        cols = start + tl.arange(0, BV)
        x = tl.load(base + cols, mask=cols < V, other=float("-inf")).to(tl.float32)
        new_max = tl.maximum(lane_max, x)
        # a lane that has seen only -inf (past the row's end) keeps a sum of 0 instead of exp(-inf + inf) = nan
        lane_sum = lane_sum * tl.where(lane_max == new_max, 1.0, tl.exp(lane_max - new_max))
        lane_sum += tl.where(x == float("-inf"), 0.0, tl.exp(x - new_max))
        lane_max = new_max
    m = tl.max(lane_max, axis=0)
    s = tl.sum(lane_sum * tl.exp(lane_max - m), axis=0)
    inside = (label >= 0) & (label < V)
    target = tl.where(inside, tl.load(base + label, mask=inside, other=0.0).to(tl.float32) - m, 0.0)
    tl.store(losses + row, (tl.log(s) - target) * w)
    if WRITE_GRAD:
        for start in range(0, V, BV):
            cols = start + tl.arange(0, BV)
            x = tl.load(base + cols, mask=cols < V, other=0.0).to(tl.float32)
            p = tl.exp(x - m) / s
            grad = tl.where(cols == label, p - 1.0, p) * w
            tl.store(base + cols, grad.to(logits.dtype.element_ty), mask=cols < V)

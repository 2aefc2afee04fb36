"""Triton kernels of the SwiGLU activation (ops/swiglu_op.py launches them): y = SiLU(gate) ⊙ up for rows
h = [gate | up] of width 2W, fp32 math, one program per (BN rows, BW channels) tile.

Backward, for dy:  s = σ(gate);  d gate = dy ⊙ up ⊙ s (1 + gate (1 − s));  d up = dy ⊙ gate s
It also writes y again (the same formula as the forward, so the same bits): the down projection's weight gradient
needs y, and forming it here, where gate and up are loaded anyway, costs one store instead of keeping y alive from
the forward to the backward.

Layouts: h and dh rows of [gate | up], dy and y rows of W channels; each row's channels contiguous, rows strided.

Imports triton: only ops/swiglu_op.py imports this module, and only when a kernel runs.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _tile(N, W, BN: tl.constexpr, BW: tl.constexpr):
    """This program's rows (int64: offsets of large activations pass 2^31), channels and their mask."""
    rows = tl.program_id(0).to(tl.int64) * BN + tl.arange(0, BN)
    cols = tl.program_id(1) * BW + tl.arange(0, BW)
    return rows[:, None], cols[None, :], (rows < N)[:, None] & (cols < W)[None, :]


@triton.jit
def swiglu_forward_kernel(h, y, N, W, stride_h, stride_y, BN: tl.constexpr, BW: tl.constexpr):
    rows, cols, mask = _tile(N, W, BN, BW)
    gate = tl.load(h + rows * stride_h + cols, mask=mask, other=0.0).to(tl.float32)
    up = tl.load(h + rows * stride_h + W + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(y + rows * stride_y + cols, (gate * tl.sigmoid(gate) * up).to(y.dtype.element_ty), mask=mask)


@triton.jit
def swiglu_backward_kernel(
    h, dy, dh, y, N, W, stride_h, stride_dy, stride_dh, stride_y, BN: tl.constexpr, BW: tl.constexpr
):
    rows, cols, mask = _tile(N, W, BN, BW)
    gate = tl.load(h + rows * stride_h + cols, mask=mask, other=0.0).to(tl.float32)
    up = tl.load(h + rows * stride_h + W + cols, mask=mask, other=0.0).to(tl.float32)
    d_y = tl.load(dy + rows * stride_dy + cols, mask=mask, other=0.0).to(tl.float32)
    s = tl.sigmoid(gate)
    silu = gate * s
    tl.store(y + rows * stride_y + cols, (silu * up).to(y.dtype.element_ty), mask=mask)
    d_gate = d_y * up * s * (1.0 + gate * (1.0 - s))
    tl.store(dh + rows * stride_dh + cols, d_gate.to(dh.dtype.element_ty), mask=mask)
    tl.store(dh + rows * stride_dh + W + cols, (d_y * silu).to(dh.dtype.element_ty), mask=mask)

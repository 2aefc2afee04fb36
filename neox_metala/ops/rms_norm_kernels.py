"""Triton kernels of the blocks' RMSNorm (ops/rms_norm_op.py launches them), fp32 math on rows of D channels:

    forward   h = x + residual (rounded to x's dtype, as the separate add would be; without a residual h = x)
              r = rsqrt(mean(h²) + eps),  y = h r w          (w: the learned scale; all ones without one)
    backward  g = dy w,  ĥ = h r,  dh = dh_in + r (g − ĥ mean(g ĥ)),  dw = Σ_rows dy ĥ

The backward forms r again from h (the row is loaded anyway) instead of keeping it from the forward, and each
program writes its tile's sums of dy ĥ (fp32, one row of D per BN rows): the scale's gradient is one small sum over
tiles afterwards. (A persistent form, a few programs per SM each walking many tiles and summing in registers, ran
at 2-4× the byte floor on an H200: too few loads in flight; bench/norm.py, session 16.)

Layouts: every tensor (rows, D) with contiguous rows (row stride D); one program holds whole rows (BD ≥ D).

Imports triton: only ops/rms_norm_op.py imports this module, and only when a kernel runs.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _rows(tile, N, D, BN: tl.constexpr, BD: tl.constexpr):
    """A tile's element offsets (int64: activations pass 2^31 elements), channel offsets and mask."""
    rows = tile * BN + tl.arange(0, BN).to(tl.int64)  # a row index fits int32; its element offset may not
    cols = tl.arange(0, BD)
    mask = (rows < N)[:, None] & (cols < D)[None, :]
    return rows[:, None] * D + cols[None, :], cols, mask


@triton.jit
def rms_norm_forward_kernel(
    x, residual, h, y, w, N, D, eps,
    HAS_RESIDUAL: tl.constexpr, HAS_WEIGHT: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr,
):  # fmt: skip
    offsets, cols, mask = _rows(tl.program_id(0), N, D, BN, BD)
    rows = tl.load(x + offsets, mask=mask, other=0.0)
    if HAS_RESIDUAL:
        rows = (rows.to(tl.float32) + tl.load(residual + offsets, mask=mask, other=0.0).to(tl.float32)).to(
            h.dtype.element_ty
        )
        tl.store(h + offsets, rows, mask=mask)
    rows = rows.to(tl.float32)
    normed = rows * tl.rsqrt(tl.sum(rows * rows, axis=1) / D + eps)[:, None]
    if HAS_WEIGHT:
        normed = normed * tl.load(w + cols, mask=cols < D, other=0.0).to(tl.float32)[None, :]
    tl.store(y + offsets, normed.to(y.dtype.element_ty), mask=mask)


@triton.jit
def rms_norm_backward_kernel(
    h, dy, dh_in, dh, w, dw_partial, N, D, eps,
    HAS_DH_IN: tl.constexpr, HAS_WEIGHT: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr,
):  # fmt: skip
    tile = tl.program_id(0)
    offsets, cols, mask = _rows(tile, N, D, BN, BD)
    rows = tl.load(h + offsets, mask=mask, other=0.0).to(tl.float32)
    d_y = tl.load(dy + offsets, mask=mask, other=0.0).to(tl.float32)
    r = tl.rsqrt(tl.sum(rows * rows, axis=1) / D + eps)[:, None]
    normed = rows * r
    g = d_y
    if HAS_WEIGHT:
        g = d_y * tl.load(w + cols, mask=cols < D, other=0.0).to(tl.float32)[None, :]
    grad = r * (g - normed * (tl.sum(g * normed, axis=1) / D)[:, None])
    if HAS_DH_IN:
        grad += tl.load(dh_in + offsets, mask=mask, other=0.0).to(tl.float32)
    tl.store(dh + offsets, grad.to(dh.dtype.element_ty), mask=mask)
    if HAS_WEIGHT:
        tl.store(dw_partial + tile * D + cols, tl.sum(d_y * normed, axis=0), mask=cols < D)

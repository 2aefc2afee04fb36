"""Triton kernels of the causal depthwise short convolution with SiLU (ops/short_conv_op.py launches them).

y[b, t, c] = SiLU(pre[b, t, c]), pre[b, t, c] = Σ_j w[c, j] · x[b, t - (W-1) + j, c] (x = 0 before t = 0), in fp32.
Backward, with dpre = dy · SiLU'(pre):
    dx[b, t, c] = Σ_j w[c, j] · dpre[b, t + (W-1) - j, c]   (dpre = 0 from t = T on)
    dw[c, j]    = Σ_{b, t} dpre[b, t, c] · x[b, t - (W-1) + j, c]
The backward is two kernels, so that dpre is formed once per element: conv_pre_grad_kernel recomputes pre from x
(instead of reading a saved copy from HBM), stores dpre and sums its span's share of dw; conv_input_grad_kernel
reads dpre at W shifts for dx. One kernel for both needed dpre at W later tokens per element, each recomputed from
W loads of x: W² loads and SiLU' per element (12–26× the byte floor on an H200, 2026-11-29).

Plain pointer arithmetic only (no block pointers or TMA), so the kernels build on every Triton the project meets.
x and dy may be strided over batch and time (the layer hands a (seq, batch) transpose); channels are contiguous.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _pre_activation(x, weight, t, c, T, C, stride_t, W: tl.constexpr, BT: tl.constexpr, BC: tl.constexpr):
    """pre for tokens t (BT,) and channels c (BC,) of one batch row (x points at it); 0 where t >= T."""
    c_mask = c < C
    pre = tl.zeros([BT, BC], dtype=tl.float32)
    for j in tl.static_range(W):
        source = t - (W - 1 - j)  # (BT,)
        mask = ((source >= 0) & (source < T))[:, None] & c_mask[None, :]
        taps = tl.load(x + source[:, None] * stride_t + c[None, :], mask=mask, other=0.0).to(tl.float32)
        w = tl.load(weight + c * W + j, mask=c_mask, other=0.0).to(tl.float32)
        pre += taps * w[None, :]
    return pre


@triton.jit
def conv_forward_kernel(x, weight, y, T, C, stride_xb, stride_xt, W: tl.constexpr, BT: tl.constexpr, BC: tl.constexpr):
    i_t, i_c, i_b = tl.program_id(0), tl.program_id(1), tl.program_id(2).to(tl.int64)
    t = i_t * BT + tl.arange(0, BT)
    c = i_c * BC + tl.arange(0, BC)
    pre = _pre_activation(x + i_b * stride_xb, weight, t, c, T, C, stride_xt, W, BT, BC)
    out = pre * tl.sigmoid(pre)
    mask = (t < T)[:, None] & (c < C)[None, :]
    tl.store(y + i_b * T * C + t[:, None] * C + c[None, :], out.to(y.dtype.element_ty), mask=mask)


@triton.jit
def conv_pre_grad_kernel(
    x,
    weight,
    dy,
    dpre,
    dw_partial,
    T,
    C,
    stride_xb,
    stride_xt,
    stride_db,
    stride_dt,
    W: tl.constexpr,
    BT: tl.constexpr,
    BC: tl.constexpr,
    STEPS: tl.constexpr,
    STAGES: tl.constexpr,
):
    """One program: STEPS blocks of BT tokens × BC channels of one batch row -> dpre there, and this span's share
    of dw in dw_partial[(b, span), c, j] (fp32; summed over the first dim by the launcher: no atomics, so the
    result does not depend on the order programs run).

    Each step loads its W taps of x once, for pre and for dw. dw is summed per tap in (BT, BC) fp32 tiles and
    reduced over tokens once, after the last step: a reduction across threads at every step (and tap) took
    ~5x the kernel's byte time on an H200 (155 µs at B8 T2048 C1024 bf16) and kept the tiles small."""
    i_span, i_c, i_b = tl.program_id(0), tl.program_id(1), tl.program_id(2).to(tl.int64)
    c = i_c * BC + tl.arange(0, BC)
    c_mask = c < C
    x_row, dy_row, dpre_row = x + i_b * stride_xb, dy + i_b * stride_db, dpre + i_b * T * C
    w = ()  # W (BC,) tiles, loaded once: loaded per step, each also paid a layout change through shared memory
    for j in tl.static_range(W):
        w += (tl.load(weight + c * W + j, mask=c_mask, other=0.0).to(tl.float32),)
    dw = (tl.zeros([BT, BC], dtype=tl.float32),) * W  # per tap
    for step in tl.range(STEPS, num_stages=STAGES):  # STAGES > 1: later steps' loads in flight (cp.async)
        t = (i_span * STEPS + step) * BT + tl.arange(0, BT)
        pre = tl.zeros([BT, BC], dtype=tl.float32)
        taps = ()  # W (BT, BC) tiles: tap j holds x[t - (W-1) + j]
        for j in tl.static_range(W):
            source = t - (W - 1 - j)
            mask = ((source >= 0) & (source < T))[:, None] & c_mask[None, :]
            x_j = tl.load(x_row + source[:, None] * stride_xt + c[None, :], mask=mask, other=0.0).to(tl.float32)
            pre += x_j * w[j][None, :]
            taps += (x_j,)
        mask = (t < T)[:, None] & c_mask[None, :]
        d_out = tl.load(dy_row + t[:, None] * stride_dt + c[None, :], mask=mask, other=0.0).to(tl.float32)
        gate = tl.sigmoid(pre)
        d_pre = d_out * gate * (1.0 + pre * (1.0 - gate))  # 0 where t >= T, so past-T taps add nothing to dw
        tl.store(dpre_row + t[:, None] * C + c[None, :], d_pre.to(dpre.dtype.element_ty), mask=mask)
        sums = ()
        for j in tl.static_range(W):
            sums += (dw[j] + d_pre * taps[j],)
        dw = sums
    partial = dw_partial + (i_b * tl.num_programs(0) + i_span) * C * W
    for j in tl.static_range(W):
        tl.store(partial + c * W + j, tl.sum(dw[j], axis=0), mask=c_mask)


@triton.jit
def conv_input_grad_kernel(dpre, weight, dx, T, C, W: tl.constexpr, BT: tl.constexpr, BC: tl.constexpr):
    """dx for BT tokens × BC channels of one batch row: x[t] sits at tap j of the window of token t + (W-1) - j."""
    i_t, i_c, i_b = tl.program_id(0), tl.program_id(1), tl.program_id(2).to(tl.int64)
    t = i_t * BT + tl.arange(0, BT)
    c = i_c * BC + tl.arange(0, BC)
    c_mask = c < C
    row = i_b * T * C
    d_in = tl.zeros([BT, BC], dtype=tl.float32)
    for j in tl.static_range(W):
        later = t + (W - 1 - j)
        mask = (later < T)[:, None] & c_mask[None, :]  # no gradient from beyond the sequence
        d_pre = tl.load(dpre + row + later[:, None] * C + c[None, :], mask=mask, other=0.0).to(tl.float32)
        w = tl.load(weight + c * W + j, mask=c_mask, other=0.0).to(tl.float32)
        d_in += w[None, :] * d_pre
    mask = (t < T)[:, None] & c_mask[None, :]
    tl.store(dx + row + t[:, None] * C + c[None, :], d_in.to(dx.dtype.element_ty), mask=mask)

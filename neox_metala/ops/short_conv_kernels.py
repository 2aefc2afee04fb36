"""Triton kernels of the causal depthwise short convolution with SiLU (ops/short_conv_op.py launches them).

y[b, t, c] = SiLU(pre[b, t, c]), pre[b, t, c] = Σ_j w[c, j] · x[b, t - (W-1) + j, c] (x = 0 before t = 0), in fp32.
Backward, with dpre = dy · SiLU'(pre):
    dx[b, t, c] = Σ_j w[c, j] · dpre[b, t + (W-1) - j, c]   (dpre = 0 from t = T on)
    dw[c, j]    = Σ_{b, t} dpre[b, t, c] · x[b, t - (W-1) + j, c]
Each direction is one kernel that walks its tokens one row at a time (conv_backward_kernel says why).

Plain pointer arithmetic only (no block pointers or TMA), so the kernels build on every Triton the project meets.
x and dy may be strided over batch and time (the layer hands a (seq, batch) transpose); channels are contiguous.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _shifted(window, newest, N: tl.constexpr):
    """The window of the last N rows (oldest first) after `newest`: its first row dropped, `newest` appended."""
    rows = ()
    for k in tl.static_range(1, N):
        rows += (window[k],)
    if N > 0:
        rows += (newest,)
    return rows


@triton.jit
def _load_rows(tensors, strides, r0, T, c, c_mask, N: tl.constexpr):
    """Each tensor (a batch row's pointer, its token stride in strides) at tokens r0 .. r0 + N - 1 (0 from T on), as
    N (BC,) fp32 rows per tensor, loaded token by token. Each kernel issues all loads of a step here before its
    stores: a load after a store may read what the store wrote (y or dx may alias x for all the compiler knows), so
    it would wait a full memory latency per token."""
    rows = ((),) * len(tensors)
    for i in tl.static_range(N):
        inside = c_mask & (r0 + i < T)
        loaded = ()
        for k in tl.static_range(len(tensors)):
            row = tl.load(tensors[k] + (r0 + i) * strides[k] + c, mask=inside, other=0.0).to(tl.float32)
            loaded += (rows[k] + (row,),)
        rows = loaded
    return rows


@triton.jit
def _span_start(x_row, weight, first, c, c_mask, stride_xt, W: tl.constexpr):
    """-> (w: W (BC,) fp32 rows, loaded once; x at the W-1 tokens before `first`, oldest first, 0 before t = 0):
    what a program needs before its span's first row."""
    w = ()
    for j in tl.static_range(W):
        w += (tl.load(weight + c * W + j, mask=c_mask, other=0.0).to(tl.float32),)
    x_window = ()
    for k in tl.static_range(W - 1):
        r = first - (W - 1) + k
        x_window += (tl.load(x_row + r * stride_xt + c, mask=c_mask & (r >= 0), other=0.0).to(tl.float32),)
    return w, x_window


@triton.jit
def _row_pre(x_r, w, x_window, W: tl.constexpr):
    """pre (fp32) of one token from x there (x_r) and at the W-1 tokens before it (x_window, oldest first)."""
    pre = w[W - 1] * x_r
    for k in tl.static_range(W - 1):
        pre += w[k] * x_window[k]
    return pre


@triton.jit
def conv_forward_kernel(
    x,
    weight,
    y,
    T,
    C,
    stride_xb,
    stride_xt,
    W: tl.constexpr,
    BT: tl.constexpr,
    BC: tl.constexpr,
    STEPS: tl.constexpr,
    STAGES: tl.constexpr,
):
    """One program: y for STEPS blocks of BT tokens × BC channels of one batch row, walked one token row at a time
    as conv_backward_kernel is, so each x row is loaded once and kept in registers for the W-1 tokens after it.
    The (BT, BC) tiles before loaded W shifted tiles per block, re-reading each row W times from L1/L2: 1.7× the
    byte floor at best (0.215 ms at B32 T2048 C2048 bf16 on an H200, 2026-11-30), where the row-walking backward
    reached 1.3× its own. A span loads the W-1 x rows before its start (mostly L2 hits: the previous span read
    them). In the block (B32 T2048 C2048 bf16, H200): 0.159-0.166 ms against the tiles' 0.247-0.251."""
    i_span, i_c, i_b = tl.program_id(0), tl.program_id(1), tl.program_id(2).to(tl.int64)
    c = i_c * BC + tl.arange(0, BC)
    c_mask = c < C
    first = i_span.to(tl.int64) * (STEPS * BT)  # int64: the row offsets below are r · stride
    x_row, y_row = x + i_b * stride_xb, y + i_b * T * C
    w, x_window = _span_start(x_row, weight, first, c, c_mask, stride_xt, W)
    for step in tl.range(STEPS, num_stages=STAGES):  # STAGES > 1: later steps' rows load as cp.async meanwhile
        r0 = first + step * BT
        (xs,) = _load_rows((x_row,), (stride_xt,), r0, T, c, c_mask, BT)
        for i in tl.static_range(BT):
            pre = _row_pre(xs[i], w, x_window, W)
            out = pre * tl.sigmoid(pre)
            tl.store(y_row + (r0 + i) * C + c, out.to(y.dtype.element_ty), mask=c_mask & (r0 + i < T))
            x_window = _shifted(x_window, xs[i], W - 1)


@triton.jit
def _row_grads(x_r, d_out, w, x_window, d_window, dx_row, r, first, T, C, c, c_mask, W: tl.constexpr):
    """Token r of one batch row: its dpre (fp32) from x and dy there (x_r, d_out) and the W-1 x rows before it
    (x_window), and dx of token r - (W-1) from the W-1 dpre rows before r (d_window) and r's, stored where that
    token is ≥ first (the earlier ones are the previous span's) and < T. -> dpre[r]."""
    pre = _row_pre(x_r, w, x_window, W)
    gate = tl.sigmoid(pre)
    d_pre = d_out * gate * (1.0 + pre * (1.0 - gate))
    d_in = w[0] * d_pre
    for k in tl.static_range(W - 1):  # d_window[k] is dpre[r - (W-1) + k], at tap W-1-k of token r - (W-1)
        d_in += w[W - 1 - k] * d_window[k]
    target = r - (W - 1)
    keep = c_mask & (target >= first) & (target < T)
    tl.store(dx_row + target * C + c, d_in.to(dx_row.dtype.element_ty), mask=keep)
    return d_pre


@triton.jit
def conv_backward_kernel(
    x,
    weight,
    dy,
    dx,
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
    """One program: dx for STEPS blocks of BT tokens × BC channels of one batch row, and this span's share of dw in
    dw_partial[(b, span), c, j] (fp32; summed over the first dim by the launcher: no atomics, so the result does
    not depend on the order programs run).

    Why one row at a time: dx of a token needs dpre at the W-1 tokens after it, which in a (BT, BC) tile sit in
    other threads. Two kernels passed dpre through HBM (written and read back: 268 MB at B32 T2048 C2048 bf16,
    0.292 + 0.190 ms on an H200 where one kernel's bytes allow ~0.19 ms); one that recomputed dpre at W shifts
    from W² loads of x took 12–26× the floor (2026-11-29); a per-program scratch ring in global memory would cost
    a barrier per step (two with a ring of two blocks: its reads and the next step's writes) and a store and W
    loads of dpre per element. Walked in (BC,) rows, each thread holds its channels of every token, so the last
    W-1 rows of x and of dpre are registers carried from row to row: x and dy are read once, dpre never leaves
    registers (fp32, so dx is rounded once), dx lags dpre by W-1 tokens, and dw sums per thread with no reduction
    across threads. A span also forms dpre for the W-1 tokens past its end (for its last dx rows; not added to its
    dw) and loads the W-1 x rows before its start. Timed: ops/short_conv_op.py (BACKWARD_BLOCKS)."""
    i_span, i_c, i_b = tl.program_id(0), tl.program_id(1), tl.program_id(2).to(tl.int64)
    c = i_c * BC + tl.arange(0, BC)
    c_mask = c < C
    first = i_span.to(tl.int64) * (STEPS * BT)  # int64: the row offsets below are r · stride
    x_row, dy_row, dx_row = x + i_b * stride_xb, dy + i_b * stride_db, dx + i_b * T * C
    w, x_window = _span_start(x_row, weight, first, c, c_mask, stride_xt, W)  # x_window: before the next row
    d_window = (tl.zeros([BC], dtype=tl.float32),) * (W - 1)  # dpre there: the previous span's, never stored here
    dw = (tl.zeros([BC], dtype=tl.float32),) * W  # per tap
    for step in tl.range(STEPS, num_stages=STAGES):  # STAGES > 1: later steps' rows load as cp.async meanwhile
        r0 = first + step * BT
        xs, dys = _load_rows((x_row, dy_row), (stride_xt, stride_dt), r0, T, c, c_mask, BT)
        for i in tl.static_range(BT):
            d_pre = _row_grads(xs[i], dys[i], w, x_window, d_window, dx_row, r0 + i, first, T, C, c, c_mask, W)
            sums = ()  # dpre is 0 from T on, so rows past the sequence add nothing
            for k in tl.static_range(W - 1):
                sums += (dw[k] + d_pre * x_window[k],)
            dw = sums + (dw[W - 1] + d_pre * xs[i],)
            x_window, d_window = _shifted(x_window, xs[i], W - 1), _shifted(d_window, d_pre, W - 1)
    # the W-1 tokens past the span: dpre for its last dx rows, not added to its dw
    r0 = first + STEPS * BT
    xs, dys = _load_rows((x_row, dy_row), (stride_xt, stride_dt), r0, T, c, c_mask, W - 1)
    for i in tl.static_range(W - 1):
        d_pre = _row_grads(xs[i], dys[i], w, x_window, d_window, dx_row, r0 + i, first, T, C, c, c_mask, W)
        x_window, d_window = _shifted(x_window, xs[i], W - 1), _shifted(d_window, d_pre, W - 1)
    partial = dw_partial + (i_b * tl.num_programs(0) + i_span) * C * W
    for j in tl.static_range(W):
        tl.store(partial + c * W + j, dw[j], mask=c_mask)

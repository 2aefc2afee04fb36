"""Triton kernel of the out projection's input gradient with MetaLA's epilogue backward in the GEMM's epilogue
(ops/out_grad_op.py launches it): dy = d out · W_out tile by tile, each tile a block of tokens of one head (BN = V),
and from that tile at once every gradient ops/epilogue_kernels.py's backward forms from dy (`_row_grads`, the math
in one place): do, dg, dv, da and the per-tile partial sums of d gate_bias and d aug_balance. dy itself is never
written or read back (2 · B·T·W elements: 537 MB at B32 T2048 W2048 in bf16). The epilogue's loads and stores were
meant to run while other programs on the SM run their GEMM's main loop; at 255 registers 1-2 programs fit an SM and
an H100 measured the kernel 1.45× cuBLAS + the epilogue kernel (docs/benchmarks.md, session 54): not on by default.

The GEMM: A = d out (M, HIDDEN) row-major (rows: tokens, seq-first (t, b) or batch-first (b, t)), B = W_out
(HIDDEN, W) row-major, both through tensor descriptors (TMA); a program per (block of BM tokens, head), programs
numbered in groups of GROUP_M token blocks that sweep every head, so that a group's rows of d out stay in the L2
while its heads read them. EPILOGUE False: dy stored as the GEMM's output (what bench/out_grad.py compares with
cuBLAS). SPLIT (1, 2 or 4): the epilogue in that many pieces of rows one after another, each with every channel
of the head (the LayerNorm's row sums), so that fewer fp32 tiles are live at once.

Imports triton: only ops/out_grad_op.py imports this module, and only when a kernel runs.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .epilogue_kernels import _row_grads
from .metala_core_kernels import _log_sigmoid, _neg_expm1


@triton.jit
def _rows(ptr, offsets, cols, valid, D: tl.constexpr):
    """(rows, BD) fp32 tile at per-row offsets, columns cols, zero at invalid rows and past D."""
    mask = valid[:, None] & (cols < D)[None, :]
    return tl.load(ptr + offsets[:, None] + cols[None, :], mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _put(ptr, offsets, cols, valid, value, D: tl.constexpr):
    mask = valid[:, None] & (cols < D)[None, :]
    tl.store(ptr + offsets[:, None] + cols[None, :], value.to(ptr.dtype.element_ty), mask=mask)


@triton.jit
def _epilogue(
    d_out, m, i_h, M, BATCH, T, plane, o, q, x, v, g, gate_bias, stats, d_o, dv, dg, da_out, strides, normalizer,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BK: tl.constexpr, ROWS: tl.constexpr, AUG: tl.constexpr,
    BIAS: tl.constexpr, SEQ_FIRST: tl.constexpr,
):  # fmt: skip
    """The epilogue backward of ROWS rows m (tokens) of head i_h from their dy tile d_out (fp32); -> this tile's sums
    (d aug_balance (BK,), d gate_bias (V,))."""
    stride_ob, stride_ot, stride_qb, stride_qt, stride_xb, stride_xt, stride_vb, stride_vt, stride_gb, stride_gt, \
        stride_dob, stride_dot, stride_dvb, stride_dvt = strides  # fmt: skip
    valid = m < M
    if SEQ_FIRST:
        i_b, t = m % BATCH, m // BATCH
    else:
        i_b, t = m // T, m % T
    i_b, t = i_b.to(tl.int64), t.to(tl.int64)
    cv, ck = tl.arange(0, V), tl.arange(0, BK)
    stat_rows = (i_b * T + t) * H + i_h
    z = _rows(o, i_b * stride_ob + t * stride_ot + i_h * V, cv, valid, V)
    a, v_t = tl.zeros([ROWS], dtype=tl.float32), z
    if AUG:
        a = tl.load(stats + 2 * plane + stat_rows, mask=valid, other=0.0)
        v_t = _rows(v, i_b * stride_vb + t * stride_vt + i_h * V, cv, valid, V)
    z_mean = tl.load(stats + stat_rows, mask=valid, other=0.0)
    z_rstd = tl.load(stats + plane + stat_rows, mask=valid, other=0.0)
    u = _rows(g, i_b * stride_gb + t * stride_gt + i_h * V, cv, valid, V)
    if BIAS:
        u += tl.load(gate_bias + i_h * V + cv).to(tl.float32)[None, :]
    du, dz, d_v, da = _row_grads(d_out, z, v_t, a, z_mean, z_rstd, u, (cv < V)[None, :], V, AUG)
    dv_rows = i_b * stride_dvb + t * stride_dvt + i_h * V
    _put(dg, dv_rows, cv, valid, du, V)
    _put(d_o, i_b * stride_dob + t * stride_dot + i_h * V, cv, valid, dz, V)
    dw = tl.zeros([BK], dtype=tl.float32)
    if AUG:
        _put(dv, dv_rows, cv, valid, d_v, V)
        tl.store(da_out + stat_rows, da, mask=valid)
        q_t = _rows(q, i_b * stride_qb + t * stride_qt + i_h * K, ck, valid, K)
        logits = _rows(x, i_b * stride_xb + t * stride_xt + i_h * K, ck, valid, K)
        key = _neg_expm1(_log_sigmoid(logits) * (1.0 / normalizer))
        dw = tl.sum(da[:, None] * q_t * key, 0)
    return dw, tl.sum(du, 0)


@triton.jit
def _halves(tile, ROWS: tl.constexpr, V: tl.constexpr):
    """The first and the last ROWS / 2 rows of a (ROWS, V) tile."""
    return tl.split(tl.permute(tl.reshape(tile, [2, ROWS // 2, V]), [1, 2, 0]))


@triton.jit
def _epilogue_rows(
    d_out, first, i_h, M, BATCH, T, plane, o, q, x, v, g, gate_bias, stats, d_o, dv, dg, da_out, strides, normalizer,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BK: tl.constexpr, ROWS: tl.constexpr, TWO: tl.constexpr,
    AUG: tl.constexpr, BIAS: tl.constexpr, SEQ_FIRST: tl.constexpr,
):  # fmt: skip
    """`_epilogue` of the ROWS rows from `first` in one piece, or with TWO in two halves one after the other, so
    that fewer fp32 tiles are live at once; -> the sums."""
    if TWO:
        top, bottom = _halves(d_out, ROWS, V)
        dw, db = _epilogue(
            top, first + tl.arange(0, ROWS // 2), i_h, M, BATCH, T, plane, o, q, x, v, g, gate_bias, stats, d_o,
            dv, dg, da_out, strides, normalizer, H, K, V, BK, ROWS // 2, AUG, BIAS, SEQ_FIRST,
        )  # fmt: skip
        dw_bottom, db_bottom = _epilogue(
            bottom, first + ROWS // 2 + tl.arange(0, ROWS // 2), i_h, M, BATCH, T, plane, o, q, x, v, g, gate_bias,
            stats, d_o, dv, dg, da_out, strides, normalizer, H, K, V, BK, ROWS // 2, AUG, BIAS, SEQ_FIRST,
        )  # fmt: skip
        dw += dw_bottom
        db += db_bottom
    else:
        dw, db = _epilogue(
            d_out, first + tl.arange(0, ROWS), i_h, M, BATCH, T, plane, o, q, x, v, g, gate_bias, stats, d_o, dv,
            dg, da_out, strides, normalizer, H, K, V, BK, ROWS, AUG, BIAS, SEQ_FIRST,
        )  # fmt: skip
    return dw, db


@triton.jit
def out_grad_kernel(
    d_out, w, dy, o, q, x, v, g, gate_bias, stats, d_o, dv, dg, da_out, partial,
    M, BATCH, T, plane, stride_ob, stride_ot, stride_qb, stride_qt, stride_xb, stride_xt, stride_vb, stride_vt,
    stride_gb, stride_gt, stride_dob, stride_dot, stride_dvb, stride_dvt, stride_partial, normalizer,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, HIDDEN: tl.constexpr, BM: tl.constexpr, BH: tl.constexpr,
    BK: tl.constexpr, GROUP_M: tl.constexpr, STAGES: tl.constexpr, AUG: tl.constexpr, BIAS: tl.constexpr,
    SEQ_FIRST: tl.constexpr, PRECISION: tl.constexpr, EPILOGUE: tl.constexpr = True, SPLIT: tl.constexpr = 2,
    WS: tl.constexpr = False,
):  # fmt: skip
    """Program (token block, head) of dy = d out · W (`BH`: the GEMM's step over HIDDEN) and, with EPILOGUE, its
    epilogue backward; partial[token block, :] gets [d aug_balance sums (H·K) | d gate_bias sums (H·V)] (fp32,
    rows stride_partial apart) for the launcher to sum. Grid (⌈M / BM⌉ · H,)."""
    pid = tl.program_id(0)
    blocks_m = tl.cdiv(M, BM)
    in_group = GROUP_M * H
    first_m = pid // in_group * GROUP_M
    size_m = tl.minimum(blocks_m - first_m, GROUP_M)
    i_m = first_m + pid % in_group % size_m
    i_h = pid % in_group // size_m
    a_desc = tl.make_tensor_descriptor(d_out, shape=[M, HIDDEN], strides=[HIDDEN, 1], block_shape=[BM, BH])
    b_desc = tl.make_tensor_descriptor(w, shape=[HIDDEN, H * V], strides=[H * V, 1], block_shape=[BH, V])
    acc = tl.zeros([BM, V], dtype=tl.float32)
    for step in tl.range(0, tl.cdiv(HIDDEN, BH), num_stages=STAGES, warp_specialize=WS):
        acc = tl.dot(
            a_desc.load([i_m * BM, step * BH]), b_desc.load([step * BH, i_h * V]), acc, input_precision=PRECISION
        )
    m = i_m * BM + tl.arange(0, BM)
    if not EPILOGUE:
        _put(dy, m.to(tl.int64) * (H * V) + i_h * V, tl.arange(0, V), m < M, acc, V)
        return
    strides = (stride_ob, stride_ot, stride_qb, stride_qt, stride_xb, stride_xt, stride_vb, stride_vt, stride_gb,
               stride_gt, stride_dob, stride_dot, stride_dvb, stride_dvt)  # fmt: skip
    tl.static_assert(SPLIT == 1 or SPLIT == 2 or SPLIT == 4)
    if SPLIT == 4:
        top, bottom = _halves(acc, BM, V)
        dw, db = _epilogue_rows(
            top, i_m * BM, i_h, M, BATCH, T, plane, o, q, x, v, g, gate_bias, stats, d_o, dv, dg, da_out, strides,
            normalizer, H, K, V, BK, BM // 2, True, AUG, BIAS, SEQ_FIRST,
        )  # fmt: skip
        dw_bottom, db_bottom = _epilogue_rows(
            bottom, i_m * BM + BM // 2, i_h, M, BATCH, T, plane, o, q, x, v, g, gate_bias, stats, d_o, dv, dg,
            da_out, strides, normalizer, H, K, V, BK, BM // 2, True, AUG, BIAS, SEQ_FIRST,
        )  # fmt: skip
        dw += dw_bottom
        db += db_bottom
    else:
        dw, db = _epilogue_rows(
            acc, i_m * BM, i_h, M, BATCH, T, plane, o, q, x, v, g, gate_bias, stats, d_o, dv, dg, da_out, strides,
            normalizer, H, K, V, BK, BM, SPLIT == 2, AUG, BIAS, SEQ_FIRST,
        )  # fmt: skip
    row = partial + i_m.to(tl.int64) * stride_partial
    ck, cv = tl.arange(0, BK), tl.arange(0, V)
    if AUG:
        tl.store(row + i_h * K + ck, dw, mask=ck < K)
        tl.store(row + H * K + i_h * V + cv, db)
    else:
        tl.store(row + i_h * V + cv, db)

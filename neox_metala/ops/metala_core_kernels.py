"""Triton kernels of MetaLA's core: the chunk form of ops/metala_core.py (its docstring has the math), one program
per chunk for the chunk-parallel steps and one per (batch·head, K block, V block) for the scans over chunks. A scan
is two kernels: the chunks' updates and decays, formed for all chunks at once, then the sequential recurrence over
them (`scan_kernel`, the same for the states and their gradients), so that its steps carry no chunk-sized work.

The output kernel is in ops/metala_core_output_kernels.py, the chunk gradients' kernels in
ops/metala_core_grad_kernels.py; both share the helpers here. Every kernel issues its global loads first, before the
decay's in-chunk cumsum, whose barriers hold back any load after them (sm90 SASS; on an H200, B32 T2048 H16, session
22: the qk gradients 390 -> 345 µs per call), and before any other cross-thread reduction (`_store_bound`). Imports
triton: only the core's launcher and its gradient kernels import this module, and only when a kernel runs.

Layouts: q, gate logits (B, T, H, K); v, output (B, T, H, V); states (B, H, N, K, V), N = number of chunks. The
inputs q, gate logits and v are read where the layer's projection left them: each token's H·D channels contiguous,
tokens a row stride apart (its own per input: 3W for views of the (B, T, 3W) projection), so that no copy of them is
made or saved. The decay is never stored: log α = logsigmoid(gate logits) / normalizer is formed in fp32 registers
wherever a kernel needs it (`_chunk_decay`), its in-chunk cumsum G too, and the key k = -expm1(g) there too; the
backward writes the gate logits' gradient (fp32) instead of log α's. Outputs and d out are contiguous; dq, d gate
logits and dv are contiguous tensors of their own or, in ops/mixer_op.py's one op, views of the projection's gradient
(row strides as the inputs'), which the kernels then add to (ACCUMULATE).
Dot operands are in the inputs' dtype (bf16 like fla; fp32 for fp16, whose range cannot hold the factorised form's
e^±30) with fp32 accumulation; FACTORISED_RANGE is ops/metala_core.py's.

Chunks of strong decay (ops/metala_core.py's exact form) are taken by sub-chunks of SUB_CHUNK = 16 rows, as fla's
chunk_gla takes every chunk: the pairs of sub-chunk i's rows with the columns before it are factorised about r_i, the
G of the row just before sub-chunk i (G_t ≤ r_i ≤ G_s, so both factors are at most 1 whatever the decay: one masked
product per sub-chunk), and only the pairs within a sub-chunk are formed per element, 16 steps over the chunk's tiles
seen as (4, 16, K) (a per-element loop over all 64 columns: 5.5 ms against fla's 1.0, B8 T2048 H8, H200).
The kernels that form scores are built once per form (FACTORISED) and launched twice: the factorised build a program
per chunk, skipping the chunks of strong decay, then the sub-chunk build over STRONG_CHUNKS chunks per program,
taking only those. Both tell the forms apart by the chunk's decays e^G_last as the state (gradient) updates stored
them (`_strong_decay`), so each chunk is taken exactly once. One build holding both forms took the sub-chunk form's
registers everywhere (session 21, H200: the output kernel 568 against 408 µs per call, dv 161 against 136).
"""

from __future__ import annotations

import math
import os

import triton
import triton.language as tl
from triton.language.extra import libdevice

from . import metala_core, metala_core_triton

# a jit function reads only constexpr globals
STRONG_DECAY = tl.constexpr(math.exp(-metala_core.FACTORISED_RANGE))  # e^G_last of a channel beyond the range
SUB_CHUNK = tl.constexpr(metala_core.SUB_CHUNK_SIZE)
FAST_EXP = tl.constexpr(metala_core_triton.FAST_EXP and os.environ.get("TRITON_INTERPRET") != "1")  # no libdevice there


@triton.jit
def _exp(x):
    """e^x, by libdevice's fast_expf with ops/metala_core_triton.py's FAST_EXP."""
    if FAST_EXP:
        return libdevice.fast_expf(x)
    else:
        return tl.exp(x)


@triton.jit
def _neg_expm1(g):
    """-expm1(g) for g ≤ 0, to fp32's relative precision: 1 − e^g cancels for small |g| (MetaLA: ~0.04 and less)."""
    series = g * (1.0 + g * (0.5 + g * (1.0 / 6.0 + g * (1.0 / 24.0 + g * (1.0 / 120.0)))))
    return -tl.where(g > -0.1, series, _exp(g) - 1.0)


@triton.jit
def _operand(x, BF16: tl.constexpr):
    """x as a factorised-form dot operand: bf16 for bf16 inputs, else fp32 (fp16 cannot hold its range)."""
    if BF16:
        return x.to(tl.bfloat16)
    else:
        return x.to(tl.float32)


@triton.jit
def _row(x, rows, j):
    """Row j of a (BT, BK) register tile, as a (BK,) vector."""
    return tl.sum(tl.where(rows[:, None] == j, x, 0.0), 0)


@triton.jit
def _sub_chunk_factors(cum, i, BT: tl.constexpr, BC: tl.constexpr):
    """(BT, BK) e^(G_t − r) on the rows t of sub-chunk i and e^(r − G_s) on the rows s before it (zero elsewhere),
    with the reference r = G at the row just before sub-chunk i: both exponents ≤ 0 whatever the decay."""
    rows = tl.arange(0, BT)[:, None]
    ref = _row(cum, tl.arange(0, BT), i * BC - 1)[None, :]
    # the minimum keeps the rows that the mask drops finite
    to_ref = tl.where((rows >= i * BC) & (rows < i * BC + BC), _exp(tl.minimum(cum - ref, 0.0)), 0.0)
    from_ref = tl.where(rows < i * BC, _exp(tl.minimum(ref - cum, 0.0)), 0.0)
    return to_ref, from_ref


@triton.jit
def _sub_chunks(x, BT: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr):
    """(BT, BK) -> (BT / BC, BC, BK): a tile by sub-chunk, so that a loop over BC rows visits every sub-chunk."""
    return tl.reshape(x, (BT // BC, BC, BK))


@triton.jit
def _block_diagonal(blocks_tile, BT: tl.constexpr, BC: tl.constexpr):
    """(BT / BC, BC, BC) blocks -> the (BT, BT) tile holding them on its diagonal, zero elsewhere."""
    blocks = tl.arange(0, BT // BC)
    same = blocks[:, None, None, None] == blocks[None, None, :, None]
    return tl.reshape(tl.where(same, blocks_tile[:, :, None, :], 0.0), (BT, BT))


@triton.jit
def _diagonal_scores(qf, key, cum, BT: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr):
    """(BT, BT) scores within each sub-chunk of BC rows (zero elsewhere, s > t included), per element:
    e^(G_t − G_s) with the exponent clamped to ≤ 0. Column j of every sub-chunk at once."""
    q_sub, key_sub, cum_sub = _sub_chunks(qf, BT, BC, BK), _sub_chunks(key, BT, BC, BK), _sub_chunks(cum, BT, BC, BK)
    sub_rows = tl.arange(0, BC)
    diagonal = tl.zeros([BT // BC, BC, BC], dtype=tl.float32)
    for j in range(BC):
        pick = sub_rows[None, :, None] == j
        pair = _exp(tl.minimum(cum_sub - tl.sum(tl.where(pick, cum_sub, 0.0), 1)[:, None, :], 0.0))
        column = tl.sum(q_sub * tl.sum(tl.where(pick, key_sub, 0.0), 1)[:, None, :] * pair, 2)  # (BT / BC, BC)
        diagonal += tl.where(sub_rows[None, None, :] == j, column[:, :, None], 0.0)
    return _block_diagonal(diagonal, BT, BC)


@triton.jit
def _reference_factors(cum, cum_last):
    """The factorised form's e^(G − r), e^(r − G) about r = G_last / 2 (within e^±30, `_scores`), e^r (1, BK)."""
    offset = cum - cum_last[None, :] * 0.5
    return _exp(offset), _exp(-offset), _exp(cum_last * 0.5)[None, :]


@triton.jit
def _from_start(cum, cum_last, FACTORISED: tl.constexpr):
    """e^G (≤ 1); in the factorised form e^(G − r) e^r, whose first factor the chunk's scores form anyway (the
    compiler forms it once): a (BT, BK) exp fewer per program."""
    if FACTORISED:
        to_ref, _, at_ref = _reference_factors(cum, cum_last)
        return to_ref * at_ref
    else:
        return _exp(cum)


@triton.jit
def _to_end(cum, cum_last, FACTORISED: tl.constexpr):
    """e^(G_last − G) (≤ 1), as `_from_start`: e^(r − G) e^r in the factorised form."""
    if FACTORISED:
        _, from_ref, at_ref = _reference_factors(cum, cum_last)
        return from_ref * at_ref
    else:
        return _exp(cum_last[None, :] - cum)


@triton.jit
def _scores(
    q, key, cum, cum_last, BT: tl.constexpr, BK: tl.constexpr, PRECISION: tl.constexpr, BF16: tl.constexpr,
    FACTORISED: tl.constexpr,
):  # fmt: skip
    """(BT, BT) fp32 scores A_ts = Σ_c q_tc k_sc e^(G_tc − G_sc), zero where s > t: factorised about r = G_last/2
    (FACTORISED: the chunk's total log decay allows it, `_strong_decay`), else by sub-chunks."""
    rows = tl.arange(0, BT)
    causal = rows[:, None] >= rows[None, :]
    qf = q.to(tl.float32)
    if FACTORISED:
        to_ref, from_ref, _ = _reference_factors(cum, cum_last)
        key_scaled = _operand(key * from_ref, BF16)
        scores = tl.dot(_operand(qf * to_ref, BF16), tl.trans(key_scaled), input_precision=PRECISION)
    else:
        scores = _diagonal_scores(qf, key, cum, BT, SUB_CHUNK, BK)
        for i in range(1, BT // SUB_CHUNK):  # sub-chunk i's rows on the columns before it: one product each
            to_ref, from_ref = _sub_chunk_factors(cum, i, BT, SUB_CHUNK)
            q_scaled = _operand(qf * to_ref, BF16)
            scores += tl.dot(q_scaled, tl.trans(_operand(key * from_ref, BF16)), input_precision=PRECISION)
    return tl.where(causal, scores, 0.0)


@triton.jit
def _token_ptrs(ptr, i_b, i_h, chunk, T, stride, D: tl.constexpr, col, BT: tl.constexpr, BD: tl.constexpr):
    """Pointers to one chunk's rows of a (B, T, H, D) tensor whose tokens lie `stride` elements apart (H·D when
    contiguous; a view of the (B, T, 3W) projection has 3W), columns [col, col + BD), and their in-bounds mask.
    Plain pointer arithmetic: block pointers are gone from newer Triton, TMA descriptors absent from older."""
    rows = tl.arange(0, BT)
    cols = col + tl.arange(0, BD)
    # a 64-bit scalar base and 32-bit in-chunk offsets: 64-bit offset tiles would take two registers per element
    base = ptr + (i_b * T + chunk * BT).to(tl.int64) * stride + i_h * D
    ptrs = base + rows[:, None] * stride + cols[None, :]
    return ptrs, (chunk * BT + rows[:, None] < T) & (cols[None, :] < D)


@triton.jit
def _load_tokens(ptr, i_b, i_h, chunk, T, stride, D: tl.constexpr, col, BT: tl.constexpr, BD: tl.constexpr):
    """(BT, BD) block, zero past T and D: zero q, k, v add nothing."""
    ptrs, mask = _token_ptrs(ptr, i_b, i_h, chunk, T, stride, D, col, BT, BD)
    return tl.load(ptrs, mask=mask, other=0.0)


@triton.jit
def _store_tokens(
    ptr, value, i_b, i_h, chunk, T, stride, D: tl.constexpr, col, BT: tl.constexpr, BD: tl.constexpr,
    ACCUMULATE: tl.constexpr,
):  # fmt: skip
    """value into the block; with ACCUMULATE added to what is there (in fp32, one rounding to the tensor's dtype):
    a gradient written into the projection's gradient that the epilogue's backward filled first (ops/mixer_op.py)."""
    ptrs, mask = _token_ptrs(ptr, i_b, i_h, chunk, T, stride, D, col, BT, BD)
    if ACCUMULATE:
        value = value.to(tl.float32) + tl.load(ptrs, mask=mask, other=0.0).to(tl.float32)
    tl.store(ptrs, value.to(ptr.dtype.element_ty), mask=mask)


@triton.jit
def _log1p(y):
    """log(1 + y) for 0 ≤ y ≤ 1 within 2.5e-7 relative (no portable log1p in Triton): y P(y), P of degree 8 through
    log1p(y) / y at the Chebyshev points of [0, 1]. No log (tl.log: ~40 more registers, spills in chunk_grads_kernel)
    and no division (atanh's series: ~190 more sm90 instructions; docs/benchmarks.md, session 39)."""
    p = (0.0051261021233726485 * y - 0.029074064606579537) * y + 0.0775160866235987
    p = (p * y - 0.13602247612385465) * y + 0.19076880730853912
    p = (p * y - 0.2483539898720075) * y + 0.33318121707353093
    p = (p * y - 0.4999944497632982) * y + 0.9999999659255084
    return p * y


@triton.jit
def _log_sigmoid(x):
    """logsigmoid(x) = min(x, 0) − log1p(e^−|x|), accurate for large positive x too (≈ −e^−x, where the key
    −expm1(log α) needs its relative precision)."""
    return tl.minimum(x, 0.0) - _log1p(_exp(-tl.abs(x)))


@triton.jit
def _chunk_decay(
    gate_ptr, i_b, i_h, chunk, T, stride, normalizer, K: tl.constexpr, col, BT: tl.constexpr, BK: tl.constexpr
):
    """One chunk's log decay block (BT, BK) fp32, log α = logsigmoid(gate logits) / normalizer (ops/metala.py's
    decay_and_key), zero past T and K (the state kept, no key), its in-chunk cumsum G and G_last."""
    ptrs, mask = _token_ptrs(gate_ptr, i_b, i_h, chunk, T, stride, K, col, BT, BK)
    logits = tl.load(ptrs, mask=mask, other=0.0).to(tl.float32)
    log_decay = tl.where(mask, _log_sigmoid(logits) * (1.0 / normalizer), 0.0)
    return log_decay, tl.cumsum(log_decay, 0), tl.sum(log_decay, 0)


@triton.jit
def _decay_rows_offsets(i_bh, chunk, NT, K: tl.constexpr, col, BT: tl.constexpr, BK: tl.constexpr):
    """Offsets of a chunk's (BT, BK) block of channels [col, col + BK) in a (B·H, N·BT, K) buffer of per-token decay
    terms (`_decay_terms`), the offsets of its last row, and the channels' mask."""
    cols = col + tl.arange(0, BK)
    base = (i_bh * NT + chunk).to(tl.int64) * BT * K
    return base + tl.arange(0, BT)[:, None] * K + cols[None, :], base + (BT - 1) * K + cols, cols < K


@triton.jit
def _decay_terms(
    gate_ptr, cums, i_b, i_h, i_bh, chunk, T, NT, stride, normalizer, K: tl.constexpr, col, BT: tl.constexpr,
    BK: tl.constexpr, STORED: tl.constexpr,
):  # fmt: skip
    """`_chunk_decay`'s (log decay, G, G_last), formed from the gate logits, or with STORED from the fp32 rows of G
    that decay_rows_kernel wrote (ops/metala_core_triton.py's STORED_DECAY_ROWS), the log decay as G's steps (the row
    before read again, from the cache): the qk-gradient kernel then runs neither logsigmoid's series (sm90: ~700
    instructions of its ~4,500) nor the scan along the chunk (~570)."""
    if STORED:
        block, last, cols = _decay_rows_offsets(i_bh, chunk, NT, K, col, BT, BK)
        cum = tl.load(cums + block, mask=cols[None, :], other=0.0)
        before = tl.load(cums + block - K, mask=(tl.arange(0, BT) > 0)[:, None] & cols[None, :], other=0.0)
        log_decay = cum - before
        cum_last = tl.load(cums + last, mask=cols, other=0.0)
    else:
        log_decay, cum, cum_last = _chunk_decay(gate_ptr, i_b, i_h, chunk, T, stride, normalizer, K, col, BT, BK)
    return log_decay, cum, cum_last


@triton.jit
def _state_ptrs(ptr, i_bh, chunk, NT, K: tl.constexpr, V: tl.constexpr, row, col, BK: tl.constexpr, BV: tl.constexpr):
    """Pointers to a (BK, BV) block of the (B·H, N, K, V) states of one chunk, and their mask."""
    rows = row + tl.arange(0, BK)
    cols = col + tl.arange(0, BV)
    ptrs = ptr + (i_bh * NT + chunk).to(tl.int64) * K * V + rows[:, None] * V + cols[None, :]
    return ptrs, (rows[:, None] < K) & (cols[None, :] < V)


@triton.jit
def _load_state(ptr, i_bh, chunk, NT, K: tl.constexpr, V: tl.constexpr, row, col, BK: tl.constexpr, BV: tl.constexpr):
    ptrs, mask = _state_ptrs(ptr, i_bh, chunk, NT, K, V, row, col, BK, BV)
    return tl.load(ptrs, mask=mask, other=0.0)


@triton.jit
def _store_state(
    ptr, value, i_bh, chunk, NT, K: tl.constexpr, V: tl.constexpr, row, col, BK: tl.constexpr, BV: tl.constexpr
):
    ptrs, mask = _state_ptrs(ptr, i_bh, chunk, NT, K, V, row, col, BK, BV)
    tl.store(ptrs, value.to(ptr.dtype.element_ty), mask=mask)


@triton.jit
def _decay_ptrs(ptr, i_bh, chunk, NT, K: tl.constexpr, row, BK: tl.constexpr):
    """Pointers to a (BK,) block of the (B·H, N, K) chunk decays e^G_last of one chunk, and their mask."""
    rows = row + tl.arange(0, BK)
    return ptr + (i_bh * NT + chunk).to(tl.int64) * K + rows, rows < K


@triton.jit
def _chunk_decays(decays, i_bh, chunk, NT, K: tl.constexpr, BK: tl.constexpr):  # its e^G_last (BK,), 1 past N, K
    ptrs, mask = _decay_ptrs(decays, i_bh, chunk, NT, K, 0, BK)
    return tl.load(ptrs, mask=mask & (chunk < NT), other=1.0)


@triton.jit
def _strong_decay(chunk_decays):
    """Whether a chunk takes the sub-chunk form: some channel's e^G_last (`_chunk_decays`) below e^−FACTORISED_RANGE."""
    return tl.min(chunk_decays, 0) < STRONG_DECAY


@triton.jit
def _store_bound(chunk_decays, T):
    """A factorised launch's rows to store of a chunk: T, or 0 for strong decay; tested at the stores, its decays loaded
    first: the minimum across threads waits for the load and held back every later load (session 33, ncu)."""
    return tl.where(_strong_decay(chunk_decays), 0, T)


@triton.jit
def _whole_chunk(BK: tl.constexpr):  # `_chunk_decays` for which `_store_bound` is T: a strong launch's own chunk
    return tl.full([BK], 1.0, tl.float32)


@triton.jit
def _any_strong(decays, i_bh, first, NT, K: tl.constexpr, BK: tl.constexpr, CHUNKS: tl.constexpr):
    """Whether any of chunks first .. first + CHUNKS − 1 takes the sub-chunk form (`_strong_decay`), in one load."""
    chunks = (first + tl.arange(0, CHUNKS))[:, None]
    ptrs, mask = _decay_ptrs(decays, i_bh, chunks, NT, K, 0, BK)  # (CHUNKS, BK)
    chunk_decays = tl.load(ptrs, mask=mask & (chunks < NT), other=1.0)
    return _strong_decay(tl.min(chunk_decays, 1))  # each chunk's minimum, then theirs


@triton.jit
def state_updates_kernel(
    v, gate_logits, states, decays, stride_v, stride_g, normalizer, T, NT, H: tl.constexpr, K: tl.constexpr,
    V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """The forward scan's terms that do not depend on the carried state, all chunks at once: chunk n's update
    U_n = (k ⊙ e^(G_last − G))ᵀ v into states[n + 1], which `scan_kernel` then turns into h_n+1 in place (the last
    chunk's U has no slot: nothing reads h_N), and its decay e^G_last into decays[n]. Grid (N, B·H, V/BV)."""
    n, i_bh, i_v = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    i_b, i_h = i_bh // H, i_bh % H
    # loaded first (module docstring)
    v_b = _load_tokens(v, i_b, i_h, n, tl.where(n + 1 < NT, T, 0), stride_v, V, i_v * BV, BT, BV)  # none for the last
    log_decay_b, cum, cum_last = _chunk_decay(gate_logits, i_b, i_h, n, T, stride_g, normalizer, K, 0, BT, BK)
    if n + 1 < NT:
        key_to_end = _neg_expm1(log_decay_b) * _exp(cum_last[None, :] - cum)  # ≤ 1: safe in any dtype
        update = tl.dot(tl.trans(key_to_end.to(v_b.dtype)), v_b, input_precision=PRECISION)
        _store_state(states, update, i_bh, n + 1, NT, K, V, 0, i_v * BV, BK, BV)
    if i_v == 0:
        ptrs, mask = _decay_ptrs(decays, i_bh, n, NT, K, 0, BK)
        tl.store(ptrs, _exp(cum_last), mask=mask)


@triton.jit
def state_grad_updates_kernel(
    q, gate_logits, d_out, state_grads, decays, scale, stride_q, stride_g, normalizer, T, NT, H: tl.constexpr,
    K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """The reverse scan's terms, all chunks at once: W_n = scale (q ⊙ e^G)ᵀ do into state_grads[n − 1] (the slot of
    dh_n, which `scan_kernel` forms there in place; chunk 0's W has no slot) and e^G_last into decays[n], written
    here too so that a backward from kept states needs nothing else from the forward. Grid (N, B·H, V/BV)."""
    n, i_bh, i_v = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    i_b, i_h = i_bh // H, i_bh % H
    # loaded first (module docstring); chunk 0's W has no slot: nothing loaded
    T_load = tl.where(n > 0, T, 0)
    q_b = _load_tokens(q, i_b, i_h, n, T_load, stride_q, K, 0, BT, BK)
    d_out_b = _load_tokens(d_out, i_b, i_h, n, T_load, H * V, V, i_v * BV, BT, BV)
    _, cum, cum_last = _chunk_decay(gate_logits, i_b, i_h, n, T, stride_g, normalizer, K, 0, BT, BK)
    if n > 0:
        q_from_start = (q_b.to(tl.float32) * _exp(cum)).to(d_out_b.dtype)  # e^G ≤ 1
        update = scale * tl.dot(tl.trans(q_from_start), d_out_b, input_precision=PRECISION)
        _store_state(state_grads, update, i_bh, n - 1, NT, K, V, 0, i_v * BV, BK, BV)
    if i_v == 0:
        ptrs, mask = _decay_ptrs(decays, i_bh, n, NT, K, 0, BK)
        tl.store(ptrs, _exp(cum_last), mask=mask)


@triton.jit
def scan_kernel(
    buffer, decays, NT, K: tl.constexpr, V: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, REVERSE: tl.constexpr,
    STAGES: tl.constexpr,
):  # fmt: skip
    """The sequential half of both scans, in place over a (B·H, N, K, V) buffer of updates: x_n = e^G_last ⊙ x_prev +
    buffer[n], with G_last that of chunk prev, the chunk before n in scan order, and x = 0 in the first slot.
    Forward (states, updates from `state_updates_kernel`): h_n = e^G_last,n−1 ⊙ h_n−1 + U_n−1. Reverse (state
    gradients): dh_n+1 = e^G_last,n+1 ⊙ dh_n+2 + W_n+1. A slot is read before it is overwritten, and only by the
    program that overwrites it. The loads do not depend on the carried x, so they can be issued ahead of the
    step that needs them: a step's chain is one fused multiply-add. Grid (K/BK, V/BV, B·H): sequential over chunks,
    so the K and V blocks give the parallelism at small B·H."""
    i_k, i_v, i_bh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    carried = tl.zeros([BK, BV], dtype=tl.float32)
    _store_state(buffer, carried, i_bh, NT - 1 if REVERSE else 0, NT, K, V, i_k * BK, i_v * BV, BK, BV)
    # Triton pipelines a loop's loads only when it holds a dot or is asked to: STAGES − 1 steps' loads in flight
    for step in tl.range(1, NT, num_stages=STAGES):
        n = NT - 1 - step if REVERSE else step
        prev = n + 1 if REVERSE else n - 1
        decay_ptrs, decay_mask = _decay_ptrs(decays, i_bh, prev, NT, K, i_k * BK, BK)
        decay = tl.load(decay_ptrs, mask=decay_mask, other=0.0)
        update = _load_state(buffer, i_bh, n, NT, K, V, i_k * BK, i_v * BV, BK, BV).to(tl.float32)
        carried = decay[:, None] * carried + update
        _store_state(buffer, carried, i_bh, n, NT, K, V, i_k * BK, i_v * BV, BK, BV)

"""Triton kernel of MetaLA's core's dv (ops/metala_core_triton.py launches it beside the qk gradients of
ops/metala_core_grad_kernels.py, whose docstring has the split): each chunk's dv = scale (A ⊙ causal)ᵀ do
+ (k ⊙ e^(G_last − G)) dh_n+1 from the state gradient leaving it, in the factorised or sub-chunk form that
ops/metala_core_kernels.py's docstring describes. Where the backward takes the chained launch
(ops/metala_core_chained_grad_kernels.py), that launch forms the factorised chunks' dv and this kernel only the strong
ones.

Imports triton: only ops/metala_core_triton.py's kernels (ops/metala_core_configs.py) import this module, and only
when a kernel runs.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .metala_core_kernels import (
    _any_strong,
    _chunk_decays,
    _decay_terms,
    _load_state,
    _load_tokens,
    _neg_expm1,
    _scores,
    _store_bound,
    _store_tokens,
    _strong_decay,
    _to_end,
    _whole_chunk,
)


@triton.jit
def _dv_operands(
    q, gate_logits, cums, i_b, i_h, i_bh, n, T, NT, stride_q, stride_g, normalizer, K: tl.constexpr,
    BT: tl.constexpr, BK: tl.constexpr, PRECISION: tl.constexpr, BF16: tl.constexpr, FACTORISED: tl.constexpr,
    STORED: tl.constexpr,
):  # fmt: skip
    """A chunk's (A ⊙ causal)ᵀ and k ⊙ e^(G_last − G) (≤ 1), in q's dtype: the left operands of its dv. Its decay
    terms formed from the gate logits, or with STORED read from the rows of G (`_decay_terms`)."""
    q_b = _load_tokens(q, i_b, i_h, n, T, stride_q, K, 0, BT, BK)
    log_decay_b, cum, cum_last = _decay_terms(
        gate_logits, cums, i_b, i_h, i_bh, n, T, NT, stride_g, normalizer, K, 0, BT, BK, STORED
    )
    key = _neg_expm1(log_decay_b)
    scores_t = tl.trans(_scores(q_b, key, cum, cum_last, BT, BK, PRECISION, BF16, FACTORISED)).to(q_b.dtype)
    return scores_t, (key * _to_end(cum, cum_last, FACTORISED)).to(q_b.dtype)


@triton.jit
def _dv_block(scores_t, key_to_end, d_out_b, state_grad, scale, PRECISION: tl.constexpr):
    """dv = scale (A ⊙ causal)ᵀ do + (k ⊙ e^(G_last − G)) dh_n+1 on one V block."""
    dv_b = scale * tl.dot(scores_t, d_out_b, input_precision=PRECISION)
    return tl.dot(key_to_end, state_grad.to(key_to_end.dtype), dv_b, input_precision=PRECISION)


@triton.jit
def _chunk_dv(
    q, gate_logits, cums, d_out, state_grads, dv, scale, stride_q, stride_g, stride_dv, normalizer, T, store_decays,
    NT, n, i_bh, i_v, H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr,
    BV: tl.constexpr, PRECISION: tl.constexpr, BF16: tl.constexpr, ACCUMULATE: tl.constexpr, V_STEPS: tl.constexpr,
    FACTORISED: tl.constexpr, STORED: tl.constexpr,
):  # fmt: skip
    """`chunk_dv_kernel` on chunk n, its dv stored where its rows are before `_store_bound(store_decays, T)`."""
    i_b, i_h = i_bh // H, i_bh % H
    if V_STEPS == 1:  # loaded first (metala_core_kernels.py); with V_STEPS the loop's pipelining issues them
        d_out_b = _load_tokens(d_out, i_b, i_h, n, T, H * V, V, i_v * BV, BT, BV)
        state_grad = _load_state(state_grads, i_bh, n, NT, K, V, 0, i_v * BV, BK, BV)
        if ACCUMULATE:
            dv_prior = _load_tokens(dv, i_b, i_h, n, T, stride_dv, V, i_v * BV, BT, BV)
    scores_t, key_to_end = _dv_operands(
        q, gate_logits, cums, i_b, i_h, i_bh, n, T, NT, stride_q, stride_g, normalizer, K, BT, BK, PRECISION, BF16,
        FACTORISED, STORED,
    )  # fmt: skip
    T_store = _store_bound(store_decays, T)
    for step in range(V_STEPS):
        col = (i_v * V_STEPS + step) * BV
        if V_STEPS > 1:
            if ACCUMULATE:
                dv_prior = _load_tokens(dv, i_b, i_h, n, T, stride_dv, V, col, BT, BV)
            d_out_b = _load_tokens(d_out, i_b, i_h, n, T, H * V, V, col, BT, BV)
            state_grad = _load_state(state_grads, i_bh, n, NT, K, V, 0, col, BK, BV)
        dv_b = _dv_block(scores_t, key_to_end, d_out_b, state_grad, scale, PRECISION)
        if ACCUMULATE:
            dv_b += dv_prior.to(tl.float32)
        _store_tokens(dv, dv_b, i_b, i_h, n, T_store, stride_dv, V, col, BT, BV, False)


@triton.jit
def chunk_dv_kernel(
    q, gate_logits, cums, d_out, state_grads, decays, dv, scale, stride_q, stride_g, stride_dv, normalizer, T, NT,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    PRECISION: tl.constexpr, BF16: tl.constexpr, ACCUMULATE: tl.constexpr, V_STEPS: tl.constexpr = 1,
    FACTORISED: tl.constexpr = True, STRONG_CHUNKS: tl.constexpr = 1, STORED: tl.constexpr = False,
):  # fmt: skip
    """dv of one chunk's V blocks, beside `chunk_grads_kernel`: the V blocks run in parallel, and neither
    kernel holds the other's tiles (the scores are formed once per program, a 64×64×K product). Its decay terms
    formed from the gate logits, or with STORED read from the rows of G in cums (ops/metala_core_triton.py's
    DV_READS_ROWS). A program steps through V_STEPS blocks of BV, the scores formed once and the next block's loads
    issued ahead by the loop's pipelining. The chunks of one form, as chunk_grads_kernel's: grid (N, B·H,
    V/(BV·V_STEPS)) for FACTORISED, else (N / STRONG_CHUNKS, B·H, V/(BV·V_STEPS))."""
    pid, i_bh, i_v = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    if FACTORISED:
        # chunks of strong decay are the strong launch's: only their stores are masked here (as if past the end), as
        # output_kernel's
        store_decays = _chunk_decays(decays, i_bh, pid, NT, K, BK)
        _chunk_dv(q, gate_logits, cums, d_out, state_grads, dv, scale, stride_q, stride_g, stride_dv, normalizer, T,
                  store_decays, NT, pid, i_bh, i_v, H, K, V, BT, BK, BV, PRECISION, BF16, ACCUMULATE, V_STEPS, True,
                  STORED)  # fmt: skip
    elif _any_strong(decays, i_bh, pid * STRONG_CHUNKS, NT, K, BK, STRONG_CHUNKS):  # one load: mostly none is
        for n in range(pid * STRONG_CHUNKS, pid * STRONG_CHUNKS + STRONG_CHUNKS):
            if _strong_decay(_chunk_decays(decays, i_bh, n, NT, K, BK)):
                _chunk_dv(q, gate_logits, cums, d_out, state_grads, dv, scale, stride_q, stride_g, stride_dv,
                          normalizer, T, _whole_chunk(BK), NT, n, i_bh, i_v, H, K, V, BT, BK, BV, PRECISION, BF16,
                          ACCUMULATE, V_STEPS, False, STORED)  # fmt: skip

"""MetaLA's core forward as one kernel sequential over chunks (ops/metala_core_triton.py's SEQUENTIAL_FORWARD): each
program carries one (batch·head, V block)'s state through the sequence in fp32 registers, chunk by chunk, instead of
the chunk-parallel form's three kernels (every chunk's update written, the scan over them read and written, the
output kernel reading the states back). Per chunk and head that is 64 KB moved instead of ~136 KB (bf16, K = 64,
V = 128: q, gate logits, v read, o written, and the state entering the chunk written only when kept for the
backward), with the next chunk's loads issued while this one computes (the loop's pipeline stages).

Its parallelism is B·H·V/BV programs, each N chunks long: enough for large batch·heads (the block benchmark's
B·H = 512 at T = 2048, 128 at 8192), too little for the 380M model's B·H = 16 at T = 8192, which keeps the
chunk-parallel form (the launcher picks by the program count).

Same math as ops/metala_core_kernels.py's output kernel and its helpers: the state that a chunk's output reads is
the carried one rounded to the inputs' dtype, as the chunk-parallel form stores it; the update added to it stays
fp32 (the chunk-parallel form rounds it once to the states' dtype before its scan).

Imports triton: only ops/metala_core_triton.py imports this module, and only when a kernel runs.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .metala_core_kernels import (
    _chunk_decay,
    _decay_rows_offsets,
    _load_tokens,
    _neg_expm1,
    _scores,
    _store_state,
    _store_tokens,
)


@triton.jit
def sequential_forward_kernel(
    q,
    gate_logits,
    v,
    states,
    out,
    scale,
    stride_q,
    stride_g,
    stride_v,
    normalizer,
    BH,
    T,
    NT,
    H: tl.constexpr,
    K: tl.constexpr,
    V: tl.constexpr,
    BT: tl.constexpr,
    BK: tl.constexpr,
    BV: tl.constexpr,
    PRECISION: tl.constexpr,
    BF16: tl.constexpr,
    KEEP_STATES: tl.constexpr,
    STAGES: tl.constexpr,
):
    """o = scale [(q ⊙ e^G) h_n + A v] chunk by chunk, then h_n+1 = e^G_last ⊙ h_n + (k ⊙ e^(G_last − G))ᵀ v, from
    h_0 = 0; with KEEP_STATES each h_n (in the inputs' dtype) into states[n], as the chunk-parallel forward leaves
    them for the backward. Grid (V/BV, B·H); BH = B·H only keys the autotuner (the best V block depends on it)."""
    i_v, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = i_bh // H, i_bh % H
    state = tl.zeros([BK, BV], dtype=tl.float32)
    for n in tl.range(0, NT, num_stages=STAGES):
        log_decay, cum, cum_last = _chunk_decay(gate_logits, i_b, i_h, n, T, stride_g, normalizer, K, 0, BT, BK)
        q_b = _load_tokens(q, i_b, i_h, n, T, stride_q, K, 0, BT, BK)
        v_b = _load_tokens(v, i_b, i_h, n, T, stride_v, V, i_v * BV, BT, BV)
        key = _neg_expm1(log_decay)
        scores = _scores(q_b, key, cum, cum_last, BT, BK, PRECISION, BF16)
        rounded = state.to(v_b.dtype)
        if KEEP_STATES:
            _store_state(states, rounded, i_bh, n, NT, K, V, 0, i_v * BV, BK, BV)
        q_from_start = (q_b.to(tl.float32) * tl.exp(cum)).to(v_b.dtype)
        acc = tl.dot(q_from_start, rounded, input_precision=PRECISION)
        acc = tl.dot(scores.to(v_b.dtype), v_b, acc, input_precision=PRECISION)
        _store_tokens(out, scale * acc, i_b, i_h, n, T, H * V, V, i_v * BV, BT, BV, False)
        key_to_end = (key * tl.exp(cum_last[None, :] - cum)).to(v_b.dtype)  # ≤ 1: safe in any dtype
        update = tl.dot(tl.trans(key_to_end), v_b, input_precision=PRECISION)
        state = tl.exp(cum_last)[:, None] * state + update


@triton.jit
def sequential_dv_kernel(
    q,
    gate_logits,
    d_out,
    state_grads,
    log_decays,
    cums,
    dv,
    scale,
    stride_q,
    stride_g,
    stride_dv,
    normalizer,
    BH,
    T,
    NT,
    H: tl.constexpr,
    K: tl.constexpr,
    V: tl.constexpr,
    BT: tl.constexpr,
    BK: tl.constexpr,
    BV: tl.constexpr,
    PRECISION: tl.constexpr,
    BF16: tl.constexpr,
    ACCUMULATE: tl.constexpr,
    STORE_DECAY_ROWS: tl.constexpr,
    STAGES: tl.constexpr,
):
    """The backward's counterpart of `sequential_forward_kernel`, from the last chunk to the first, in place of the
    state-gradient updates, their reverse scan and chunk_dv_kernel: dv = scale Aᵀ do + (k ⊙ e^(G_last − G)) dh_n+1,
    each dh_n+1 (in the inputs' dtype) into state_grads[n] for the qk-gradient kernel, then dh_n = e^G_last ⊙ dh_n+1
    + scale (q ⊙ e^G)ᵀ do; with STORE_DECAY_ROWS (V block 0) each chunk's log decay and G per token, as
    state_grad_updates_kernel stores them. dv added to what it holds with ACCUMULATE. Grid (V/BV, B·H)."""
    i_v, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = i_bh // H, i_bh % H
    state_grad = tl.zeros([BK, BV], dtype=tl.float32)
    for step in tl.range(0, NT, num_stages=STAGES):
        n = NT - 1 - step
        log_decay, cum, cum_last = _chunk_decay(gate_logits, i_b, i_h, n, T, stride_g, normalizer, K, 0, BT, BK)
        q_b = _load_tokens(q, i_b, i_h, n, T, stride_q, K, 0, BT, BK)
        d_out_b = _load_tokens(d_out, i_b, i_h, n, T, H * V, V, i_v * BV, BT, BV)
        if ACCUMULATE:
            dv_prior = _load_tokens(dv, i_b, i_h, n, T, stride_dv, V, i_v * BV, BT, BV)
        if STORE_DECAY_ROWS and i_v == 0:
            block, _, cols = _decay_rows_offsets(i_bh, n, NT, K, 0, BT, BK)
            tl.store(log_decays + block, log_decay, mask=cols[None, :])
            tl.store(cums + block, cum, mask=cols[None, :])
        key = _neg_expm1(log_decay)
        rounded = state_grad.to(d_out_b.dtype)
        _store_state(state_grads, rounded, i_bh, n, NT, K, V, 0, i_v * BV, BK, BV)
        scores_t = tl.trans(_scores(q_b, key, cum, cum_last, BT, BK, PRECISION, BF16)).to(d_out_b.dtype)
        key_to_end = (key * tl.exp(cum_last[None, :] - cum)).to(d_out_b.dtype)
        dv_b = scale * tl.dot(scores_t, d_out_b, input_precision=PRECISION)
        dv_b = tl.dot(key_to_end, rounded, dv_b, input_precision=PRECISION)
        if ACCUMULATE:
            dv_b += dv_prior.to(tl.float32)
        _store_tokens(dv, dv_b, i_b, i_h, n, T, stride_dv, V, i_v * BV, BT, BV, False)
        q_from_start = (q_b.to(tl.float32) * tl.exp(cum)).to(d_out_b.dtype)  # e^G ≤ 1
        update = scale * tl.dot(tl.trans(q_from_start), d_out_b, input_precision=PRECISION)
        state_grad = tl.exp(cum_last)[:, None] * state_grad + update

"""Triton kernel of MetaLA's core's output, the forward's last step: each chunk's o = scale [(q ⊙ e^G) h_n + A v] from
the state entering it (ops/metala_core_kernels.py's scans), one program per chunk and head, in the factorised or
sub-chunk form that ops/metala_core_kernels.py's docstring describes; with AUG it also writes the self-augmentation's a
(ops/mixer_op.py's CORE_A).

Imports triton: only ops/metala_core_triton.py and metala_core_chained_kernels.py import this module, and only when a
kernel runs.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .metala_core_kernels import (
    _any_strong,
    _chunk_decay,
    _chunk_decays,
    _from_start,
    _load_state,
    _load_tokens,
    _neg_expm1,
    _scores,
    _store_bound,
    _store_tokens,
    _strong_decay,
    _whole_chunk,
)


@triton.jit
def _aug_weights(aug_w, i_h, K: tl.constexpr, BK: tl.constexpr):
    """aug_w[h] = aug_balance's channels of head h (BK,) fp32: loaded with a kernel's first loads."""
    return tl.load(aug_w + i_h * K + tl.arange(0, BK), mask=tl.arange(0, BK) < K, other=0.0).to(tl.float32)


@triton.jit
def _store_aug_a(aug_a, q_b, key, w, i_b, i_h, n, T, T_store, i_v, H: tl.constexpr, BT: tl.constexpr):
    """The self-augmentation's a = Σ_k q·key·w of chunk n's tokens into aug_a (B, T, H), by the first V block's
    program, its rows before T_store."""
    t = n * BT + tl.arange(0, BT)
    a = tl.sum(q_b.to(tl.float32) * key * w[None, :], 1)
    tl.store(aug_a + (i_b * T + t) * H + i_h, a, mask=(t < T_store) & (i_v == 0))


@triton.jit
def _chunk_output(
    q, gate_logits, v, states, out, aug_w, aug_a, scale, stride_q, stride_g, stride_v, normalizer, T, store_decays, NT,
    n, i_bh, i_v, H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr,
    BV: tl.constexpr, PRECISION: tl.constexpr, BF16: tl.constexpr, FACTORISED: tl.constexpr, AUG: tl.constexpr,
):  # fmt: skip
    """o = scale [(q ⊙ e^G) h_n + A v] of chunk n, and with AUG a = Σ_k q·key·aug_w[h] (B, T, H) into aug_a."""
    i_b, i_h = i_bh // H, i_bh % H
    q_b = _load_tokens(q, i_b, i_h, n, T, stride_q, K, 0, BT, BK)
    v_b = _load_tokens(v, i_b, i_h, n, T, stride_v, V, i_v * BV, BT, BV)
    state = _load_state(states, i_bh, n, NT, K, V, 0, i_v * BV, BK, BV)
    if AUG:
        w = _aug_weights(aug_w, i_h, K, BK)
    log_decay_b, cum, cum_last = _chunk_decay(gate_logits, i_b, i_h, n, T, stride_g, normalizer, K, 0, BT, BK)
    key = _neg_expm1(log_decay_b)
    T_store = _store_bound(store_decays, T)  # tested here, not before the loads (`_store_bound`)
    if AUG:  # stored before the dots, so that the key's tile is not kept for it
        _store_aug_a(aug_a, q_b, key, w, i_b, i_h, n, T, T_store, i_v, H, BT)
    scores = _scores(q_b, key, cum, cum_last, BT, BK, PRECISION, BF16, FACTORISED)
    q_from_start = (q_b.to(tl.float32) * _from_start(cum, cum_last, FACTORISED)).to(v_b.dtype)
    acc = tl.dot(q_from_start, state.to(v_b.dtype), input_precision=PRECISION)
    acc = tl.dot(scores.to(v_b.dtype), v_b, acc, input_precision=PRECISION)
    _store_tokens(out, scale * acc, i_b, i_h, n, T_store, H * V, V, i_v * BV, BT, BV, False)


@triton.jit
def output_kernel(
    q, gate_logits, v, states, decays, out, aug_w, aug_a, scale, stride_q, stride_g, stride_v, normalizer, T, NT,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    PRECISION: tl.constexpr, BF16: tl.constexpr, FACTORISED: tl.constexpr, STRONG_CHUNKS: tl.constexpr = 1,
    AUG: tl.constexpr = False,
):  # fmt: skip
    """The chunks' outputs in one form (ops/metala_core_kernels.py's docstring). Grid (N, B·H, V/BV) for FACTORISED,
    else (N / STRONG_CHUNKS, B·H, V/BV) (STRONG_CHUNKS a power of 2)."""
    pid, i_bh, i_v = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    if FACTORISED:
        # chunks of strong decay are the strong launch's: only their stores are masked here (as if past the end), since
        # making the loads or the work wait for the test added its latency (session 21: output 408 -> 437 µs per call;
        # with the test at the stores, `_store_bound`, 401 -> 364 µs, session 33)
        store_decays = _chunk_decays(decays, i_bh, pid, NT, K, BK)
        _chunk_output(q, gate_logits, v, states, out, aug_w, aug_a, scale, stride_q, stride_g, stride_v, normalizer, T,
                      store_decays, NT, pid, i_bh, i_v, H, K, V, BT, BK, BV, PRECISION, BF16, True, AUG)  # fmt: skip
    elif _any_strong(decays, i_bh, pid * STRONG_CHUNKS, NT, K, BK, STRONG_CHUNKS):  # one load: mostly none is
        for n in range(pid * STRONG_CHUNKS, pid * STRONG_CHUNKS + STRONG_CHUNKS):
            if _strong_decay(_chunk_decays(decays, i_bh, n, NT, K, BK)):
                _chunk_output(q, gate_logits, v, states, out, aug_w, aug_a, scale, stride_q, stride_g, stride_v,
                              normalizer, T, _whole_chunk(BK), NT, n, i_bh, i_v, H, K, V, BT, BK, BV, PRECISION,
                              BF16, False, AUG)  # fmt: skip

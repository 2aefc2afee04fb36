"""Triton kernel of MetaLA's core's state gradients and dv in one launch (ops/metala_core_triton.py's CHAINED_BACKWARD):
the chunks' state-gradient updates, the reverse scan over chunks and dv, which ops/metala_core_kernels.py and
metala_core_grad_kernels.py take as three launches that write and read the (B·H, N, K, V) buffer of state gradients
three times and read it once more for dv. The mirror of ops/metala_core_chained_kernels.py's forward, whose module
docstring has the chain's rules (the order of the programs, the two-slot buffer, the flags); its helpers are used here
with a chain position p = N − 1 − n in place of the chunk n, since the backward's chain runs from the last chunk to the
first.

A program per (chunk, batch·head, V block), numbered position-major. It forms its chunk's update
W_n = scale (q ⊙ e^G)ᵀ do and its in-chunk dv, scale (A ⊙ causal)ᵀ do, without the state gradient, then waits for
dh_n+1 (the gradient of the state leaving its chunk), which the program of chunk n + 1 published, publishes
dh_n = e^G_last ⊙ dh_n+1 + W_n for chunk n − 1, stores dh_n+1 in the inputs' dtype into slot n of the state gradients
(what the qk-gradient kernel reads), and adds (k ⊙ e^(G_last − G)) dh_n+1 to its dv. The carried sums stay in fp32
(the three launches rounded each W to the inputs' dtype before the scan).

Chunks of strong decay: their W is exact in any form (e^G ≤ 1) and chained here; their dv is masked as in
chunk_dv_kernel's factorised launch and written by its strong launch.

Imports triton: only ops/metala_core_triton.py imports this module, and only when a kernel runs.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .metala_core_chained_kernels import _carried_state, _chunk_and_chain, _publish, _release, _wait_for_state
from .metala_core_kernels import (
    _chunk_decay,
    _decay_ptrs,
    _exp,
    _load_tokens,
    _neg_expm1,
    _scores,
    _store_bound,
    _store_state,
    _store_tokens,
    _to_end,
)


@triton.jit
def chained_grads_kernel(
    q, gate_logits, d_out, state_grads, decays, dv, carried, flags, scale, stride_q, stride_g, stride_dv,
    normalizer, T, NT, BH, group_bh, H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr,
    BK: tl.constexpr, BV: tl.constexpr, PRECISION: tl.constexpr, BF16: tl.constexpr, ACCUMULATE: tl.constexpr,
):  # fmt: skip
    """dv of every chunk but those of strong decay (added to what dv holds if ACCUMULATE), dh_n+1 into state_grads[n]
    (the inputs' dtype; zero in the last slot), e^G_last into decays[n]. The decay terms formed from the gate logits:
    read from decay_rows_kernel's rows instead (as chunk_dv_kernel's STORED), the sm90 bf16 build at BV 128 and 4
    warps spilled 880 B instead of 56 (all loads issued first). carried: (B·H, 2, K, V) fp32; flags: int32, at least
    N·B·H·⌈V / BV⌉, zero. Grid (N·B·H·⌈V / BV⌉,), position-major in groups of the chains of group_bh batch·heads."""
    NV: tl.constexpr = (V + BV - 1) // BV  # chains per batch·head
    pid = tl.program_id(0)
    position, chain = _chunk_and_chain(pid, NT, BH * NV, group_bh * NV)
    n = NT - 1 - position
    i_bh, i_v = chain // NV, chain % NV
    i_b, i_h = i_bh // H, i_bh % H
    col = i_v * BV
    # loaded first (ops/metala_core_kernels.py's docstring)
    d_out_b = _load_tokens(d_out, i_b, i_h, n, T, H * V, V, col, BT, BV)
    if ACCUMULATE:
        dv_prior = _load_tokens(dv, i_b, i_h, n, T, stride_dv, V, col, BT, BV)
    q_b = _load_tokens(q, i_b, i_h, n, T, stride_q, K, 0, BT, BK)
    log_decay_b, cum, cum_last = _chunk_decay(gate_logits, i_b, i_h, n, T, stride_g, normalizer, K, 0, BT, BK)
    chunk_decays = _exp(cum_last)
    # what does not need the state gradient first, so that the wait comes as late as it can
    q_from_start = (q_b.to(tl.float32) * _exp(cum)).to(d_out_b.dtype)  # e^G ≤ 1: exact in every chunk
    update = scale * tl.dot(tl.trans(q_from_start), d_out_b, input_precision=PRECISION)
    T_store = _store_bound(chunk_decays, T)
    key = _neg_expm1(log_decay_b)
    scores_t = tl.trans(scale * _scores(q_b, key, cum, cum_last, BT, BK, PRECISION, BF16, True)).to(d_out_b.dtype)
    if ACCUMULATE:  # what dv holds, as the product's accumulator: its tile dies there
        acc = tl.dot(scores_t, d_out_b, dv_prior.to(tl.float32), input_precision=PRECISION)
    else:
        acc = tl.dot(scores_t, d_out_b, input_precision=PRECISION)
    key_to_end = (key * _to_end(cum, cum_last, True)).to(d_out_b.dtype)
    _wait_for_state(flags, chain, position, BH, NV)
    state_grad = _carried_state(carried, i_bh, position, K, V, col, BK, BV)
    _publish(carried, state_grad, update, chunk_decays, i_bh, position, NT, K, V, col, BK, BV)
    _release(flags, chain, position, NT, BH, NV)
    _store_state(state_grads, state_grad, i_bh, n, NT, K, V, 0, col, BK, BV)
    if i_v == 0:
        ptrs, mask = _decay_ptrs(decays, i_bh, n, NT, K, 0, BK)
        tl.store(ptrs, chunk_decays, mask=mask)
    acc = tl.dot(key_to_end, state_grad.to(key_to_end.dtype), acc, input_precision=PRECISION)
    _store_tokens(dv, acc, i_b, i_h, n, T_store, stride_dv, V, col, BT, BV, False)

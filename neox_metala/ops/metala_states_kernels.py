"""Triton kernel of the forward's chunk states in one pass: a program per (batch·head, V block) walks the chunks in
order, forms each chunk's update U_n = (k ⊙ e^(G_last − G))ᵀ v and carries h_n+1 = e^G_last ⊙ h_n + U_n in fp32
registers, storing every h_n (and each chunk's decay e^G_last), where the two-level form
(ops/metala_core_kernels.py: `state_updates_kernel` for all chunks at once, then `scan_kernel`) writes the updates
into the states' buffer and reads them back (32 KB per chunk and head at K = 64, V = 128 in bf16), and rounds each
update to the states' dtype before it is summed.

Why both: the two-level form was written for small B·H (at T = 8192, B·H = 16 a step that formed its update took ~1.9
µs on an H200, sequential in 128 chunks). Nothing in a step here waits on the carried state but one multiply-add, so
with many (batch·head, V block) programs in flight the steps' latency overlaps across programs; the launcher picks
this form where there are enough of them (ops/metala_core_triton.py, SEQUENTIAL_STATES_PROGRAMS).

Imports triton: only ops/metala_core_triton.py imports this module, and only when a kernel runs.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .metala_core_kernels import _chunk_decay, _decay_ptrs, _load_tokens, _neg_expm1, _store_state


@triton.jit
def states_kernel(
    v, gate_logits, states, decays, stride_v, stride_g, normalizer, T, NT, H: tl.constexpr, K: tl.constexpr,
    V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, PRECISION: tl.constexpr,
    STAGES: tl.constexpr,
):  # fmt: skip
    """h_n for every chunk n (h_0 = 0) into states (B·H, N, K, V) and e^G_last of every chunk into decays (B·H, N,
    K), as `state_updates_kernel` + `scan_kernel` leave them. Grid (V/BV, B·H); the decays by the first V block."""
    i_v, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = i_bh // H, i_bh % H
    carried = tl.zeros([BK, BV], dtype=tl.float32)
    _store_state(states, carried, i_bh, 0, NT, K, V, 0, i_v * BV, BK, BV)
    # STAGES − 1 chunks' loads in flight: a step's chain on the carried state is one multiply-add
    for n in tl.range(0, NT, num_stages=STAGES):
        v_b = _load_tokens(v, i_b, i_h, n, T, stride_v, V, i_v * BV, BT, BV)
        log_decay_b, cum, cum_last = _chunk_decay(gate_logits, i_b, i_h, n, T, stride_g, normalizer, K, 0, BT, BK)
        chunk_decay = tl.exp(cum_last)
        if i_v == 0:
            ptrs, mask = _decay_ptrs(decays, i_bh, n, NT, K, 0, BK)
            tl.store(ptrs, chunk_decay, mask=mask)
        if n + 1 < NT:  # the last chunk's state would enter no chunk
            key_to_end = _neg_expm1(log_decay_b) * tl.exp(cum_last[None, :] - cum)  # ≤ 1: safe in any dtype
            update = tl.dot(tl.trans(key_to_end.to(v_b.dtype)), v_b, input_precision=PRECISION)
            carried = chunk_decay[:, None] * carried + update
            _store_state(states, carried, i_bh, n + 1, NT, K, V, 0, i_v * BV, BK, BV)

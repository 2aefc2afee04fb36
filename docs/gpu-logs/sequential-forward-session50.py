"""Session 50's record (not shipped): no faster in the block. H200, bf16 with self-augmentation: bench/core_ncu.py
--timings --augment (calls 2-3) at B32 T2048 H16 611-613 µs per launch against chained_kernel's 662-664 (core f+b
2.272 against 2.314 ms), at B16 T2048 314 against 303, at B8 T8192 832 against 655; bench/layer.py's block at T 2048
(call 4): sequential_kernel 0.706 ms per step against chained_kernel's 0.705, the block 0.840 against 0.844 of
attention's (12.86 / 12.93 ms, spreads 0.5-1.3 ms). Its autotuner's pick at B32 T2048: BV 128, 2 stages, 4 warps (255
registers, 176 B spilled). Launched from metala_core_triton._chained in place of the chained kernel, grid (B·H,
⌈V / BV⌉); autotuned over ({"BV": 16 | 64 | 128, "STAGES": 2 | 1}, 4 | 8 warps, capped at 168 or not). Its GPU tests
(test_metala_core_triton's check() at T300 K64 V128 mixed and T2048 mild, bf16, views of one projection) passed.

Triton kernel of the chained forward (ops/metala_core_chained_kernels.py) with each chain's chunks in one program
(session 50's switch SEQUENTIAL_FORWARD, not kept): a program per (batch·head, V block) walks its chunks in order, the
state hₙ in fp32 registers from one chunk to the next, each chunk's loads issued a chunk ahead by Triton's pipelining
(`tl.range`'s stages). The chained kernel instead spreads a chain's chunks over programs and passes the state between
them through the L2 with a flag per chunk: a round trip of 64 KB per program and a wait for another SM. Here nothing
is passed and nothing waits; the parallelism is the chains' alone (B·H·⌈V / BV⌉ programs), so it takes the launches
with many chains. The backward's mirror (dhₙ₊₁ carried from the last chunk to the first, dv per chunk) was slower
than the chained backward at every shape timed (H200, bench/core_ncu.py --augment, session 50: 478-481 against
382-386 µs per launch at 256 chains of 32 chunks).

Same arithmetic as the chained kernel (its helpers); chunks of strong decay chained exactly, their outputs and a
masked for output_kernel's strong launch.
"""

from __future__ import annotations

import triton
import triton.language as tl

from neox_metala.ops.metala_core_chained_kernels import _store_output
from neox_metala.ops.metala_core_kernels import (
    _chunk_decay,
    _decay_ptrs,
    _exp,
    _from_start,
    _load_tokens,
    _neg_expm1,
    _scores,
    _store_bound,
    _store_state,
)
from neox_metala.ops.metala_core_output_kernels import _aug_weights, _store_aug_a


@triton.jit
def sequential_kernel(
    q, gate_logits, v, states, decays, out, aug_w, aug_a, scale, stride_q, stride_g, stride_v, normalizer, T, NT,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    PRECISION: tl.constexpr, BF16: tl.constexpr, AUG: tl.constexpr = False, STAGES: tl.constexpr = 2,
):  # fmt: skip
    """chained_kernel's outputs, states (hₙ into states[n]), decays and (AUG) a. Grid (B·H, ⌈V / BV⌉)."""
    i_bh, i_v = tl.program_id(0), tl.program_id(1)
    i_b, i_h = i_bh // H, i_bh % H
    col = i_v * BV
    if AUG:
        w = _aug_weights(aug_w, i_h, K, BK)
    state = tl.zeros([BK, BV], dtype=tl.float32)
    for n in tl.range(0, NT, num_stages=STAGES):
        q_b = _load_tokens(q, i_b, i_h, n, T, stride_q, K, 0, BT, BK)
        v_b = _load_tokens(v, i_b, i_h, n, T, stride_v, V, col, BT, BV)
        log_decay_b, cum, cum_last = _chunk_decay(gate_logits, i_b, i_h, n, T, stride_g, normalizer, K, 0, BT, BK)
        key = _neg_expm1(log_decay_b)
        chunk_decays = _exp(cum_last)
        key_to_end = (key * _exp(cum_last[None, :] - cum)).to(v_b.dtype)  # ≤ 1: safe in any dtype
        update = tl.dot(tl.trans(key_to_end), v_b, input_precision=PRECISION)
        T_store = _store_bound(chunk_decays, T)
        if AUG:
            _store_aug_a(aug_a, q_b, key, w, i_b, i_h, n, T, T_store, i_v, H, BT)
        scores = _scores(q_b, key, cum, cum_last, BT, BK, PRECISION, BF16, True).to(v_b.dtype)
        acc = tl.dot(scores, v_b, input_precision=PRECISION)
        q_from_start = (q_b.to(tl.float32) * _from_start(cum, cum_last, True)).to(v_b.dtype)
        _store_state(states, state, i_bh, n, NT, K, V, 0, col, BK, BV)
        if i_v == 0:
            ptrs, mask = _decay_ptrs(decays, i_bh, n, NT, K, 0, BK)
            tl.store(ptrs, chunk_decays, mask=mask)
        _store_output(out, acc, q_from_start, state, scale, i_b, i_h, n, T_store, H, V, col, BT, BV, PRECISION)
        state = chunk_decays[:, None] * state + update

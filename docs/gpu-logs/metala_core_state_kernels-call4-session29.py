"""The states entering each chunk, or their gradients, in one pass over the chunks (ops/metala_core_triton.py's
ONE_PASS_STATES): a program per (V block, batch·head) forms each chunk's update and adds it to the state it carries in
fp32, instead of the two-level form's chunk-parallel updates written out in the states' dtype and then read back
and rewritten by `scan_kernel`. That saves two of the three passes over the (B·H, N, K, V) buffer (at B32 T2048 H16
in bf16: 1 GB per f+b) and keeps the updates unrounded, for sequential steps that each carry a chunk's work (a log
decay load, the in-chunk cumsum, a dot: the two-level form exists because at B·H = 16 such steps took ~60% of the
core's time). The next chunks' loads are issued ahead by the loop's pipelining (STAGES).
"""

from __future__ import annotations

import triton
import triton.language as tl

from .metala_core_kernels import _chunk_decay, _decay_ptrs, _exp, _load_tokens, _neg_expm1, _state_ptrs


@triton.jit
def chunk_states_kernel(
    x, gate_logits, y, states, decays, scale, stride_x, stride_g, stride_y, normalizer, T, NT, BH,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    PRECISION: tl.constexpr, REVERSE: tl.constexpr, STAGES: tl.constexpr,
):  # fmt: skip
    """Forward (x unused, y = v): states[0] = 0 and h_n+1 = e^G_last,n ⊙ h_n + (k ⊙ e^(G_last − G))ᵀ v of chunk n.
    REVERSE (x = q, y = d out, the state gradients): slot NT − 1 = 0 and slot n − 1 = e^G_last,n ⊙ slot n +
    scale (q ⊙ e^G)ᵀ do of chunk n, the slot of dh_n (metala_core_kernels.py's state_grad_updates_kernel and
    scan_kernel in one). Both write every chunk's e^G_last into decays. BH (B·H) is the autotuners' key only: the
    parallelism here is B·H · V/BV programs, so the best BV depends on it. Grid (V/BV, B·H)."""
    i_v, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = i_bh // H, i_bh % H
    carried = tl.zeros([BK, BV], dtype=tl.float32)
    ptrs, mask = _state_ptrs(states, i_bh, NT - 1 if REVERSE else 0, NT, K, V, 0, i_v * BV, BK, BV)
    tl.store(ptrs, carried.to(states.dtype.element_ty), mask=mask)
    for step in tl.range(0, NT, num_stages=STAGES):
        n = NT - 1 - step if REVERSE else step
        slot = n - 1 if REVERSE else n + 1  # none for the last chunk in scan order: its term is not loaded
        T_load = tl.where((slot >= 0) & (slot < NT), T, 0)
        y_b = _load_tokens(y, i_b, i_h, n, T_load, stride_y, V, i_v * BV, BT, BV)
        if REVERSE:
            x_b = _load_tokens(x, i_b, i_h, n, T_load, stride_x, K, 0, BT, BK)
        log_decay, cum, cum_last = _chunk_decay(gate_logits, i_b, i_h, n, T, stride_g, normalizer, K, 0, BT, BK)
        if REVERSE:
            left = x_b.to(tl.float32) * _exp(cum)  # e^G ≤ 1
        else:
            left = _neg_expm1(log_decay) * _exp(cum_last[None, :] - cum)  # ≤ 1: safe in any dtype
        update = tl.dot(tl.trans(left.to(y_b.dtype)), y_b, input_precision=PRECISION)
        decay = _exp(cum_last)
        carried = decay[:, None] * carried + (scale * update if REVERSE else update)
        ptrs, mask = _state_ptrs(states, i_bh, slot, NT, K, V, 0, i_v * BV, BK, BV)
        tl.store(ptrs, carried.to(states.dtype.element_ty), mask=mask & (slot >= 0) & (slot < NT))
        decay_ptrs, decay_mask = _decay_ptrs(decays, i_bh, n, NT, K, 0, BK)
        tl.store(decay_ptrs, decay, mask=decay_mask & (i_v == 0))

"""Triton kernels of MetaLA's core's two scans over chunks (ops/metala_core_kernels.py's docstring): the chunks'
updates and decays, formed for all chunks at once (`state_updates_kernel` for the states, `state_grad_updates_kernel`
for their gradients), then the sequential recurrence over them (`scan_kernel`, the same for both).

Imports triton: only ops/metala_core_configs.py imports this module, and only when a kernel runs.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .metala_core_kernels import (
    _chunk_decay,
    _decay_ptrs,
    _exp,
    _load_state,
    _load_tokens,
    _neg_expm1,
    _store_state,
)


@triton.jit
def state_updates_kernel(
    v, gate_logits, states, decays, stride_v, stride_g, normalizer, T, NT, H: tl.constexpr, K: tl.constexpr,
    V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, PRECISION: tl.constexpr,
    CHUNK_STEPS: tl.constexpr = 1, CHUNK_STAGES: tl.constexpr = 2,
):  # fmt: skip
    """The forward scan's terms that do not depend on the carried state, all chunks at once: chunk n's update
    U_n = (k ⊙ e^(G_last − G))ᵀ v into states[n + 1], which `scan_kernel` then turns into h_n+1 in place (the last
    chunk's U has no slot: nothing reads h_N), and its decay e^G_last into decays[n]. Grid (N, B·H, V/BV), or with
    CHUNK_STEPS (N / CHUNK_STEPS, B·H, V/BV): each program that many chunks in turn, CHUNK_STAGES of their loads in
    flight (the loop's pipelining)."""
    pid, i_bh, i_v = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    if CHUNK_STEPS == 1:
        _state_update(v, gate_logits, states, decays, stride_v, stride_g, normalizer, T, NT, pid, i_bh, i_v, H, K, V,
                      BT, BK, BV, PRECISION)  # fmt: skip
    else:
        for step in tl.range(0, CHUNK_STEPS, num_stages=CHUNK_STAGES):
            _state_update(v, gate_logits, states, decays, stride_v, stride_g, normalizer, T, NT,
                          pid * CHUNK_STEPS + step, i_bh, i_v, H, K, V, BT, BK, BV, PRECISION)  # fmt: skip


@triton.jit
def _state_update(
    v, gate_logits, states, decays, stride_v, stride_g, normalizer, T, NT, n, i_bh, i_v, H: tl.constexpr,
    K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """`state_updates_kernel` on chunk n (nothing stored for n past the last chunk)."""
    i_b, i_h = i_bh // H, i_bh % H
    # loaded first (metala_core_kernels.py's docstring)
    v_b = _load_tokens(v, i_b, i_h, n, tl.where(n + 1 < NT, T, 0), stride_v, V, i_v * BV, BT, BV)  # none for the last
    log_decay_b, cum, cum_last = _chunk_decay(gate_logits, i_b, i_h, n, T, stride_g, normalizer, K, 0, BT, BK)
    if n + 1 < NT:
        key_to_end = _neg_expm1(log_decay_b) * _exp(cum_last[None, :] - cum)  # ≤ 1: safe in any dtype
        update = tl.dot(tl.trans(key_to_end.to(v_b.dtype)), v_b, input_precision=PRECISION)
        _store_state(states, update, i_bh, n + 1, NT, K, V, 0, i_v * BV, BK, BV)
    if i_v == 0:
        ptrs, mask = _decay_ptrs(decays, i_bh, n, NT, K, 0, BK)
        tl.store(ptrs, _exp(cum_last), mask=mask & (n < NT))


@triton.jit
def state_grad_updates_kernel(
    q, gate_logits, d_out, state_grads, decays, scale, stride_q, stride_g, normalizer, T, NT, H: tl.constexpr,
    K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, PRECISION: tl.constexpr,
    CHUNK_STEPS: tl.constexpr = 1, CHUNK_STAGES: tl.constexpr = 2,
):  # fmt: skip
    """The reverse scan's terms, all chunks at once: W_n = scale (q ⊙ e^G)ᵀ do into state_grads[n − 1] (the slot of
    dh_n, which `scan_kernel` forms there in place; chunk 0's W has no slot) and e^G_last into decays[n], written
    here too so that a backward from kept states needs nothing else from the forward. Grid (N, B·H, V/BV), or with
    CHUNK_STEPS as `state_updates_kernel`'s."""
    pid, i_bh, i_v = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    if CHUNK_STEPS == 1:
        _state_grad_update(q, gate_logits, d_out, state_grads, decays, scale, stride_q, stride_g, normalizer, T, NT,
                           pid, i_bh, i_v, H, K, V, BT, BK, BV, PRECISION)  # fmt: skip
    else:
        for step in tl.range(0, CHUNK_STEPS, num_stages=CHUNK_STAGES):
            _state_grad_update(q, gate_logits, d_out, state_grads, decays, scale, stride_q, stride_g, normalizer, T,
                               NT, pid * CHUNK_STEPS + step, i_bh, i_v, H, K, V, BT, BK, BV, PRECISION)  # fmt: skip


@triton.jit
def _state_grad_update(
    q, gate_logits, d_out, state_grads, decays, scale, stride_q, stride_g, normalizer, T, NT, n, i_bh, i_v,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    PRECISION: tl.constexpr,
):  # fmt: skip
    """`state_grad_updates_kernel` on chunk n (nothing stored for n past the last chunk)."""
    i_b, i_h = i_bh // H, i_bh % H
    # loaded first (metala_core_kernels.py's docstring); chunk 0's W has no slot: nothing loaded
    T_load = tl.where((n > 0) & (n < NT), T, 0)
    q_b = _load_tokens(q, i_b, i_h, n, T_load, stride_q, K, 0, BT, BK)
    d_out_b = _load_tokens(d_out, i_b, i_h, n, T_load, H * V, V, i_v * BV, BT, BV)
    _, cum, cum_last = _chunk_decay(gate_logits, i_b, i_h, n, T, stride_g, normalizer, K, 0, BT, BK)
    if (n > 0) & (n < NT):
        q_from_start = (q_b.to(tl.float32) * _exp(cum)).to(d_out_b.dtype)  # e^G ≤ 1
        update = scale * tl.dot(tl.trans(q_from_start), d_out_b, input_precision=PRECISION)
        _store_state(state_grads, update, i_bh, n - 1, NT, K, V, 0, i_v * BV, BK, BV)
    if i_v == 0:
        ptrs, mask = _decay_ptrs(decays, i_bh, n, NT, K, 0, BK)
        tl.store(ptrs, _exp(cum_last), mask=mask & (n < NT))


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

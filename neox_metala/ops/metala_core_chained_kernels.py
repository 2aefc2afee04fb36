"""Triton kernel of MetaLA's core's whole forward in one launch (ops/metala_core_triton.py's CHAINED_FORWARD): the
chunks' state updates, the scan over chunks and the chunks' outputs, which ops/metala_core_kernels.py and
metala_core_output_kernels.py take as three launches that write and read the (B·H, N, K, V) buffer three times.

A program per (chunk, batch·head, V block; or pair of V blocks, `chained_kernel`'s V_STEPS), numbered chunk-major
within groups of chains and group after group (`_chunk_and_chain`): every program of chunk n has a lower number than
those of chunk n + 1 of its group, and only one group's carried states are in use at a time. It forms its chunk's
update U_n = (k ⊙ e^(G_last − G))ᵀ v (and with one V block its in-chunk output A v) without the state, then waits for
the state entering its chunk, h_n, which the program of chunk n − 1 of the same (batch·head, V block) published,
publishes h_n+1 = e^G_last ⊙ h_n + U_n for chunk n + 1, and adds (q ⊙ e^G) h_n to its output. Only the wait, a
multiply-add and the publication are sequential along a chain; everything else runs as the chunk-parallel kernels do.
The chain carries fp32 states through a two-slot buffer per chain (slot n % 2 holds h_n: h_n+2 overwrites it only
after the program of chunk n + 1 has read it, since that program publishes before its successor can), a flag per
(chunk, chain) saying that h_n+1 is there; h_n is also stored in the inputs' dtype as the forward's states (kept for
the backward, read by the strong-decay launch).

Waiting is safe because GPUs dispatch a grid's programs in increasing order: a program waits only for a
lower-numbered one, which has started, and the lowest waiting program's predecessor has finished. CUDA's programming
model does not promise that order; CUB's single-pass scans take their tile from blockIdx and rely on the same hardware
behaviour (NVIDIA/cub#245). The interpreter runs the programs one after another in that order. The flags must be zero
at launch.

Chunks of strong decay (ops/metala_core_kernels.py's docstring): their state updates are exact in any form and are
chained here; their outputs are masked as in output_kernel's factorised launch and written by its strong launch.

Imports triton: only ops/metala_core_triton.py imports this module, and only when a kernel runs.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .metala_core_kernels import (
    _chunk_decay,
    _decay_ptrs,
    _exp,
    _from_start,
    _load_tokens,
    _neg_expm1,
    _scores,
    _state_ptrs,
    _store_bound,
    _store_state,
    _store_tokens,
)
from .metala_core_output_kernels import _aug_weights, _store_aug_a


@triton.jit
def _chunk_and_chain(pid, NT, chains, group):
    """(chunk, chain) of a chained launch's program `pid`: the chains in groups of `group`, each group's programs
    numbered chunk-major and the groups one after another. The carried states of a group's chains then fit the L2,
    where they stay while the other data streams past (H200, B32 T2048 H16: 512 chains carry 32 MiB; in two batch
    halves the forward took 0.92 against 0.99 ms, bench/overlap.py); the chunk before a program's on its chain
    keeps a lower number, which `_wait_for_state` needs."""
    first = pid // (NT * group) * group
    size = tl.minimum(group, chains - first)  # the last group's may be smaller
    local = pid - first * NT
    return local // size, first + local % size


@triton.jit
def _wait_for_state(flags, chain, n, BH, NV: tl.constexpr):
    """Returns once the program of chunk n − 1 of the chain has published h_n (at once for chunk 0). An acquire: the
    state's loads after it are ordered after it."""
    if n > 0:
        while tl.atomic_add(flags + (n - 1) * BH * NV + chain, 0, sem="acquire") == 0:
            pass


@triton.jit
def _carried_state(carried, i_bh, n, K: tl.constexpr, V: tl.constexpr, col, BK: tl.constexpr, BV: tl.constexpr):
    """h_n (BK, BV) fp32 of columns [col, col + BV) after `_wait_for_state`; zero for chunk 0. .cg reads it from the
    L2, past this SM's L1, which may hold the slot as it was two chunks ago."""
    if n > 0:
        ptrs, mask = _state_ptrs(carried, i_bh, n % 2, 2, K, V, 0, col, BK, BV)
        state = tl.load(ptrs, mask=mask, other=0.0, cache_modifier=".cg")
    else:
        state = tl.zeros([BK, BV], dtype=tl.float32)
    return state


@triton.jit
def _publish(carried, state, update, chunk_decays, i_bh, n, NT, K: tl.constexpr, V: tl.constexpr, col,
             BK: tl.constexpr, BV: tl.constexpr):  # fmt: skip
    """h_n+1 = e^G_last ⊙ h_n + U_n of columns [col, col + BV) into its slot (none after the last chunk)."""
    if n + 1 < NT:
        ptrs, mask = _state_ptrs(carried, i_bh, (n + 1) % 2, 2, K, V, 0, col, BK, BV)
        tl.store(ptrs, chunk_decays[:, None] * state + update, mask=mask, cache_modifier=".cg")


@triton.jit
def _release(flags, chain, n, NT, BH, NV: tl.constexpr):
    """Flags h_n+1 as published, every thread's part of it stored first (CUTLASS's semaphore does the same)."""
    if n + 1 < NT:
        tl.debug_barrier()
        tl.atomic_xchg(flags + n * BH * NV + chain, 1, sem="release")


@triton.jit
def _store_output(out, acc, q_from_start, state, scale, i_b, i_h, n, T_store, H: tl.constexpr, V: tl.constexpr, col,
                  BT: tl.constexpr, BV: tl.constexpr, PRECISION: tl.constexpr):  # fmt: skip
    """o = scale [A v + (q ⊙ e^G) h_n] of columns [col, col + BV), acc holding A v."""
    acc = tl.dot(q_from_start, state.to(q_from_start.dtype), acc, input_precision=PRECISION)
    _store_tokens(out, scale * acc, i_b, i_h, n, T_store, H * V, V, col, BT, BV, False)


@triton.jit
def chained_kernel(
    q, gate_logits, v, states, decays, out, aug_w, aug_a, carried, flags, scale, stride_q, stride_g, stride_v,
    normalizer, T, NT, BH, group_bh, H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr,
    BK: tl.constexpr, BV: tl.constexpr, PRECISION: tl.constexpr, BF16: tl.constexpr, AUG: tl.constexpr = False,
    V_STEPS: tl.constexpr = 1,
):  # fmt: skip
    """o = scale [(q ⊙ e^G) h_n + A v] of every chunk but those of strong decay, h_n into states[n] (the inputs'
    dtype), e^G_last into decays[n], and with AUG a = Σ_k q·key·aug_w[h] into aug_a (output_kernel's). carried:
    (B·H, 2, K, V) fp32; flags: int32, at least N·B·H·⌈V / BV⌉, zero. Grid (N·B·H·⌈V / (BV·V_STEPS)⌉,),
    chunk-major in groups of the chains of group_bh batch·heads. V_STEPS 2: a program takes two V blocks of BV (a
    chain per pair), its chunk's key-side terms formed once for both, the second block's state loaded and published
    after the first block's output is stored, so that the two blocks' states are never live at once."""
    NV: tl.constexpr = (V + BV * V_STEPS - 1) // (BV * V_STEPS)  # chains per batch·head
    tl.static_assert(V_STEPS == 1 or V_STEPS == 2)
    pid = tl.program_id(0)
    n, chain = _chunk_and_chain(pid, NT, BH * NV, group_bh * NV)
    i_bh, i_v = chain // NV, chain % NV
    i_b, i_h = i_bh // H, i_bh % H
    col = i_v * BV * V_STEPS
    # loaded first (ops/metala_core_kernels.py's docstring)
    q_b = _load_tokens(q, i_b, i_h, n, T, stride_q, K, 0, BT, BK)
    v_b = _load_tokens(v, i_b, i_h, n, T, stride_v, V, col, BT, BV)
    if V_STEPS == 2:
        v_next = _load_tokens(v, i_b, i_h, n, T, stride_v, V, col + BV, BT, BV)
    if AUG:
        w = _aug_weights(aug_w, i_h, K, BK)
    log_decay_b, cum, cum_last = _chunk_decay(gate_logits, i_b, i_h, n, T, stride_g, normalizer, K, 0, BT, BK)
    key = _neg_expm1(log_decay_b)
    chunk_decays = _exp(cum_last)
    # what does not need the state first, so that the wait comes as late as it can
    key_to_end = (key * _exp(cum_last[None, :] - cum)).to(v_b.dtype)  # ≤ 1: safe in any dtype
    update = tl.dot(tl.trans(key_to_end), v_b, input_precision=PRECISION)
    if V_STEPS == 2:
        update_next = tl.dot(tl.trans(key_to_end), v_next, input_precision=PRECISION)
    T_store = _store_bound(chunk_decays, T)
    if AUG:
        _store_aug_a(aug_a, q_b, key, w, i_b, i_h, n, T, T_store, i_v, H, BT)
    scores = _scores(q_b, key, cum, cum_last, BT, BK, PRECISION, BF16, True).to(v_b.dtype)
    if V_STEPS == 1:
        acc = tl.dot(scores, v_b, input_precision=PRECISION)
    q_from_start = (q_b.to(tl.float32) * _from_start(cum, cum_last, True)).to(v_b.dtype)
    _wait_for_state(flags, chain, n, BH, NV)
    state = _carried_state(carried, i_bh, n, K, V, col, BK, BV)
    _publish(carried, state, update, chunk_decays, i_bh, n, NT, K, V, col, BK, BV)
    if V_STEPS == 1:
        _release(flags, chain, n, NT, BH, NV)
    _store_state(states, state, i_bh, n, NT, K, V, 0, col, BK, BV)
    if i_v == 0:
        ptrs, mask = _decay_ptrs(decays, i_bh, n, NT, K, 0, BK)
        tl.store(ptrs, chunk_decays, mask=mask)
    if V_STEPS == 2:
        acc = tl.dot(scores, v_b, input_precision=PRECISION)
    _store_output(out, acc, q_from_start, state, scale, i_b, i_h, n, T_store, H, V, col, BT, BV, PRECISION)
    if V_STEPS == 2:
        state = _carried_state(carried, i_bh, n, K, V, col + BV, BK, BV)
        _publish(carried, state, update_next, chunk_decays, i_bh, n, NT, K, V, col + BV, BK, BV)
        _release(flags, chain, n, NT, BH, NV)
        _store_state(states, state, i_bh, n, NT, K, V, 0, col + BV, BK, BV)
        acc = tl.dot(scores, v_next, input_precision=PRECISION)
        _store_output(out, acc, q_from_start, state, scale, i_b, i_h, n, T_store, H, V, col + BV, BT, BV, PRECISION)

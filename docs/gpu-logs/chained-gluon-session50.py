"""Session 50's record (not shipped): this Gluon kernel was slower than the Triton kernel it would replace. H200,
bench/core_ncu.py --timings --augment --accumulate --keep-states, B32 T2048 H16 bf16 (calls 1 and 2): 766 µs per
launch against chained_kernel's 664 (uncapped, 248 registers: 763; capped at 168, none spilled, as launched); core
f+b 2.413 against 2.314 ms. Its GPU tests passed (output, states, a against fp64 at T130 mild/mixed, T2048,
T300 open-shut, with and without self-augmentation; the Triton kernel's results to bf16's rounding at 64 chains of 64
chunks). It was launched from metala_core_triton._chained, before the Triton launch, with grid (N · B·H,), 4 warps,
maxnreg 168, the same carried buffer and flags. Build it on a CPU: bench/gluon_build.py's way (GluonASTSource,
GPUTarget("cuda", 90, 32)).

The chained forward (metala_core_chained_kernels.chained_kernel at the model's shape: K 64, V 128, chunks of 64,
bf16) in Gluon (Triton 3.6's `triton.experimental.gluon`), one program per (chunk, batch·head) holding all 128 value
columns, numbered chunk-major as the Triton kernel's (its docstring has the chain's protocol: the two-slot fp32
carried states, the flags, why waiting is safe). The kernel chooses its layouts: q, the gate logits and v go to
shared memory by cp.async, every elementwise step runs in the wgmma accumulator's layout, and the four products
(the chunk's update Uₙ = (k ⊙ e^(G_last − G))ᵀ v, its scores, then A v + (q ⊙ e^G) hₙ into one accumulator) run as
wgmma from shared memory, the first two while the self-augmentation's a is formed and before the wait for hₙ.

Same arithmetic as the Triton kernel (metala_core.py's factorised form about G_last / 2 for the scores and q ⊙ e^G,
the exact e^(G_last − G) for the update, so that chunks of strong decay are chained exactly); their outputs and a are
masked, as the Triton kernel's, for output_kernel's strong launch.

"""

from __future__ import annotations

from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (
    async_copy,
    fence_async_shared,
    warpgroup_mma,
    warpgroup_mma_wait,
)

from neox_metala.ops.metala_core_gluon_kernels import STRONG_DECAY, _exp, _neg_expm1


@gluon.jit
def _log_sigmoid(x):
    """logsigmoid(x) = min(x, 0) − log1p(e^−|x|), log1p by metala_core_kernels._log1p's polynomial."""
    y = _exp(-gl.abs(x))
    p = (0.0051261021233726485 * y - 0.029074064606579537) * y + 0.0775160866235987
    p = (p * y - 0.13602247612385465) * y + 0.19076880730853912
    p = (p * y - 0.2483539898720075) * y + 0.33318121707353093
    p = (p * y - 0.4999944497632982) * y + 0.9999999659255084
    return gl.minimum(x, 0.0) - p * y


@gluon.jit
def _add(a, b):
    return a + b


@gluon.jit
def chained_forward_kernel(
    q, gate_logits, v, states, decays, out, aug_w, aug_a, carried, flags, scale, stride_q, stride_g, stride_v,
    normalizer, T, NT, BH, H: gl.constexpr, AUG: gl.constexpr,
):  # fmt: skip
    """chained_kernel's outputs, states, decays and (AUG) a, with its buffers (carried (B·H, 2, K, V) fp32, flags
    zero, one per (chunk, batch·head)). Grid (N · B·H,), chunk-major; 4 warps."""
    BT: gl.constexpr = 64
    K: gl.constexpr = 64
    V: gl.constexpr = 128
    pid = gl.program_id(0)
    n, i_bh = pid // BH, pid % BH
    i_b, i_h = i_bh // H, i_bh % H

    ld: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [4, 1], [1, 0])  # 16-byte copies
    rows_of: gl.constexpr = gl.BlockedLayout([16, 2], [4, 8], [1, 4], [1, 0])  # the cumsum along a thread's rows
    acc64: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 64, 16])
    acc128: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 128, 16])
    tok_k: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BT, K], gl.bfloat16)
    tok_v: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BT, V], gl.bfloat16)
    tok_t: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BT, BT], gl.bfloat16)

    # q and the gate logits, then v, straight into shared memory (zero past T)
    first = (i_b * T + n * BT).to(gl.int64)
    rows = gl.arange(0, BT, layout=gl.SliceLayout(1, ld))
    cols = gl.arange(0, V, layout=gl.SliceLayout(0, ld))
    k_cols = gl.arange(0, K, layout=gl.SliceLayout(0, ld))
    in_t = ((n * BT + rows) < T)[:, None]
    inside = in_t & (k_cols < K)[None, :]
    q_s = gl.allocate_shared_memory(gl.bfloat16, [BT, K], tok_k)
    g_s = gl.allocate_shared_memory(gl.bfloat16, [BT, K], tok_k)
    v_s = gl.allocate_shared_memory(gl.bfloat16, [BT, V], tok_v)
    tile = rows[:, None] * stride_q + k_cols[None, :]
    async_copy.async_copy_global_to_shared(q_s, q + first * stride_q + i_h * K + tile, mask=inside)
    tile = rows[:, None] * stride_g + k_cols[None, :]
    async_copy.async_copy_global_to_shared(g_s, gate_logits + first * stride_g + i_h * K + tile, mask=inside)
    async_copy.commit_group()
    tile = rows[:, None] * stride_v + cols[None, :]
    async_copy.async_copy_global_to_shared(v_s, v + first * stride_v + i_h * V + tile, mask=in_t & (cols < V)[None, :])
    async_copy.commit_group()
    r = gl.arange(0, BT, layout=gl.SliceLayout(1, rows_of))
    c = gl.arange(0, K, layout=gl.SliceLayout(0, rows_of))
    t = n * BT + r
    if AUG:
        w = gl.load(aug_w + i_h * K + c).to(gl.float32)
    async_copy.wait_group(1)  # q and the logits
    gl.thread_barrier()

    # the decay terms (metala_core_kernels._chunk_decay, _reference_factors), each thread 16 rows of two channels
    q_b = q_s.load(rows_of).to(gl.float32)
    logits = g_s.load(rows_of).to(gl.float32)
    log_decay = gl.where((t < T)[:, None], _log_sigmoid(logits) * (1.0 / normalizer), 0.0)
    cum = gl.associative_scan(log_decay, 0, _add)
    cum_last = gl.sum(log_decay, 0)
    key = _neg_expm1(log_decay)
    chunk_decays = _exp(cum_last)
    offset = cum - cum_last[None, :] * 0.5
    to_ref = _exp(offset)
    at_ref = _exp(cum_last * 0.5)[None, :]
    to_end_s = gl.allocate_shared_memory(
        gl.bfloat16, [BT, K], tok_k, (key * _exp(cum_last[None, :] - cum)).to(gl.bfloat16)
    )  # exact: ≤ 1 for any decay
    q_scaled_s = gl.allocate_shared_memory(gl.bfloat16, [BT, K], tok_k, (q_b * to_ref).to(gl.bfloat16))
    key_s = gl.allocate_shared_memory(gl.bfloat16, [BT, K], tok_k, (key * _exp(-offset)).to(gl.bfloat16))
    q_start_s = gl.allocate_shared_memory(gl.bfloat16, [BT, K], tok_k, (q_b * to_ref * at_ref).to(gl.bfloat16))
    async_copy.wait_group(0)  # v
    gl.thread_barrier()
    fence_async_shared()
    update = warpgroup_mma(to_end_s.permute((1, 0)), v_s, gl.zeros([K, V], gl.float32, acc128), is_async=True)
    scores = warpgroup_mma(q_scaled_s, key_s.permute((1, 0)), gl.zeros([BT, BT], gl.float32, acc64), is_async=True)

    # while they run: a, the chunk's decays, and which rows this launch stores (none for strong decay)
    T_store = gl.where(gl.min(chunk_decays, 0) < STRONG_DECAY, 0, T)
    if AUG:
        gl.store(aug_a + (i_b * T + t) * H + i_h, gl.sum(q_b * key * w[None, :], 1), mask=t < T_store)
    gl.store(decays + (i_bh * NT + n) * K + c, chunk_decays)
    update, scores = warpgroup_mma_wait(0, deps=[update, scores])
    r64 = gl.arange(0, BT, layout=gl.SliceLayout(1, acc64))
    c64 = gl.arange(0, BT, layout=gl.SliceLayout(0, acc64))
    scores_s = gl.allocate_shared_memory(
        gl.bfloat16, [BT, BT], tok_t, gl.where(r64[:, None] >= c64[None, :], scores, 0.0).to(gl.bfloat16)
    )

    # the chain: wait for hₙ, publish hₙ₊₁ = e^G_last ⊙ hₙ + Uₙ (metala_core_chained_kernels' helpers' protocol)
    k_rows = gl.arange(0, K, layout=gl.SliceLayout(1, acc128))
    v_cols = gl.arange(0, V, layout=gl.SliceLayout(0, acc128))
    state_tile = k_rows[:, None] * V + v_cols[None, :]
    if n > 0:
        while gl.atomic_add(flags + (n - 1) * BH + i_bh, 0, sem="acquire") == 0:
            pass
    slot = carried + (i_bh * 2 + n % 2).to(gl.int64) * (K * V)
    # .cg: from the L2, past this SM's L1, which may hold the slot as it was two chunks ago
    state = gl.load(slot + state_tile, mask=(k_rows < K)[:, None] & (n > 0), other=0.0, cache_modifier=".cg")
    if n + 1 < NT:
        next_slot = carried + (i_bh * 2 + (n + 1) % 2).to(gl.int64) * (K * V)
        row_decays = gl.convert_layout(chunk_decays, gl.SliceLayout(1, acc128))
        gl.store(next_slot + state_tile, row_decays[:, None] * state + update, cache_modifier=".cg")
        gl.thread_barrier()  # every thread's part stored before the flag (as CUTLASS's semaphore)
        gl.atomic_xchg(flags + n * BH + i_bh, 1, sem="release")
    state_b = state.to(gl.bfloat16)
    gl.store(states + (i_bh * NT + n).to(gl.int64) * (K * V) + state_tile, state_b)
    state_s = gl.allocate_shared_memory(gl.bfloat16, [K, V], tok_v, state_b)
    fence_async_shared()

    # o = scale [A v + (q ⊙ e^G) hₙ]
    o = warpgroup_mma(scores_s, v_s, gl.zeros([BT, V], gl.float32, acc128), is_async=True)
    o = warpgroup_mma(q_start_s, state_s, o, is_async=True)
    o = warpgroup_mma_wait(0, deps=[o])
    r_o = gl.arange(0, BT, layout=gl.SliceLayout(1, acc128))
    o_ptrs = out + (first + r_o[:, None]) * (H * V) + i_h * V + v_cols[None, :]
    gl.store(o_ptrs, (scale * o).to(out.dtype.element_ty), mask=((n * BT + r_o) < T_store)[:, None])

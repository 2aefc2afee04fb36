"""The qk-gradient kernel's factorised launch (metala_core_grad_kernels.chunk_grads_kernel at the model's shape: K 64,
V 128, chunks of 64, bf16, the stored decay rows, self-augmentation's terms) in Gluon (Triton 3.6's
`triton.experimental.gluon`), whose layouts the kernel chooses: the decay terms, dq and d logits stay in the wgmma
accumulator's layout from their loads to their stores (most of the Triton build's ~40 barriers are its layout
changes between the loads', the products' and the elementwise steps' layouts); the V loop's tiles go to shared memory
by cp.async; the three products of the loaded tiles run as async wgmma while the decay terms are formed; the suffix
sums are the Triton kernel's two tf32 products with the upper triangle of ones (metala_core_grad_kernels._suffix_sums).
sm90 build: 210 registers, 2,040 instructions, 9 barriers against the Triton kernel's 236, 2,392, 47 (capped at 168
registers, as metala_core_gluon.GLUON_QK_REGISTERS launches it: 2,096 instructions, 104 B spilled).

Same arithmetic and roundings as the Triton kernel (metala_core.py's factorised form); each chunk's 64 channels over
two programs (32 each, the Triton kernel's K_SPLIT 2), grid (N · 2, B·H). Chunks of strong decay are left to the
Triton kernel's strong launch, as its own factorised launch leaves them.

Imports triton: only ops/metala_core_gluon.py imports this module, and only when the kernel runs.
"""

from __future__ import annotations

import math

from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (
    async_copy,
    fence_async_shared,
    warpgroup_mma,
    warpgroup_mma_wait,
)

from .metala_core import FACTORISED_RANGE

STRONG_DECAY = gl.constexpr(math.exp(-FACTORISED_RANGE))  # metala_core_kernels._strong_decay's bound


@gluon.jit
def _exp(x):
    """e^x as libdevice's fast_expf (metala_core_triton.FAST_EXP): ex2.approx of x · log2 e."""
    return gl.exp2(x * 1.4426950408889634)


@gluon.jit
def _neg_expm1(g):
    """1 − e^g for g ≤ 0: a series near 0 (metala_core_kernels._neg_expm1's)."""
    series = g * (1.0 + g * (0.5 + g * (1.0 / 6.0 + g * (1.0 / 24.0 + g * (1.0 / 120.0)))))
    return -gl.where(g > -0.1, series, _exp(g) - 1.0)


@gluon.jit
def qk_grads_kernel(
    q, v, d_out, states, state_grads, decays, cums, dq, d_gate_logits, aug_da, aug_w, scale, stride_q, stride_v,
    stride_dq, stride_dg, normalizer, T, NT, H: gl.constexpr, DOUBLINGS: gl.constexpr,
):  # fmt: skip
    """dq and d gate logits of channels [32 i_k, 32 i_k + 32) of chunk n; program_id(0) = 2 n + i_k, program_id(1) =
    b·H + h. 4 warps."""
    BT: gl.constexpr = 64
    K: gl.constexpr = 64
    V: gl.constexpr = 128
    KS: gl.constexpr = 32
    pid, i_bh = gl.program_id(0), gl.program_id(1)
    i_k, n = pid % 2, pid // 2
    i_b, i_h = i_bh // H, i_bh % H
    k_col = i_k * KS

    # 16-byte loads; the products' accumulators; their operands' shared layouts
    ld: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [4, 1], [1, 0])
    acc64: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 64, 16])
    acc32: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 32, 16])
    acc_tf32: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 32, 8])
    upper_op: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=acc_tf32, k_width=1)
    tok_v: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BT, V], gl.bfloat16)
    st_v: gl.constexpr = gl.NVMMASharedLayout.get_default_for([KS, V], gl.bfloat16)
    tok_t: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BT, BT], gl.bfloat16)
    tok_k: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BT, KS], gl.bfloat16)
    sums_sl: gl.constexpr = gl.NVMMASharedLayout.get_default_for([KS, BT], gl.float32)

    # v, do (BT, V) and the program's rows of h, dh (KS, V) straight into shared memory (cp.async: 380 µs per launch
    # against 440 through registers, H200, B16 T2048 H16, session 48's probe in docs/gpu-logs)
    rows = gl.arange(0, BT, layout=gl.SliceLayout(1, ld))
    cols = gl.arange(0, V, layout=gl.SliceLayout(0, ld))
    first = (i_b * T + n * BT).to(gl.int64)
    full = ((n * BT + rows) < T)[:, None] & (cols < V)[None, :]  # cp.async fills the masked elements with zeros
    s_rows = gl.arange(0, KS, layout=gl.SliceLayout(1, ld))
    s_base = ((i_bh * NT + n).to(gl.int64) * K + k_col) * V
    v_s = gl.allocate_shared_memory(gl.bfloat16, [BT, V], tok_v)
    do_s = gl.allocate_shared_memory(gl.bfloat16, [BT, V], tok_v)
    h_s = gl.allocate_shared_memory(gl.bfloat16, [KS, V], st_v)
    dh_s = gl.allocate_shared_memory(gl.bfloat16, [KS, V], st_v)
    tile = rows[:, None] * stride_v + cols[None, :]
    async_copy.async_copy_global_to_shared(v_s, v + first * stride_v + i_h * V + tile, mask=full)
    tile = rows[:, None] * (H * V) + cols[None, :]
    async_copy.async_copy_global_to_shared(do_s, d_out + first * (H * V) + i_h * V + tile, mask=full)
    state_tile = s_base + s_rows[:, None] * V + cols[None, :]
    async_copy.async_copy_global_to_shared(h_s, states + state_tile)
    async_copy.async_copy_global_to_shared(dh_s, state_grads + state_tile)
    async_copy.commit_group()
    # the decay terms' inputs, in the accumulators' layout, while the copies run
    r = gl.arange(0, BT, layout=gl.SliceLayout(1, acc32))
    c = gl.arange(0, KS, layout=gl.SliceLayout(0, acc32))
    t = n * BT + r
    row_base = (i_bh * NT + n).to(gl.int64) * BT * K + k_col
    cum = gl.load(cums + row_base + r[:, None] * K + c[None, :])
    before = gl.load(cums + row_base - K + r[:, None] * K + c[None, :], mask=(r > 0)[:, None], other=0.0)
    cum_last = gl.load(cums + row_base + (BT - 1) * K + c)
    q_ptrs = q + first * stride_q + i_h * K + k_col + r[:, None] * stride_q + c[None, :]
    q_b = gl.load(q_ptrs, mask=(t < T)[:, None], other=0.0).to(gl.float32)
    da = gl.load(aug_da + (i_b * T + t) * H + i_h, mask=t < T, other=0.0)
    w = gl.load(aug_w + i_h * K + k_col + c).to(gl.float32)
    chunk_decays = gl.load(decays + (i_bh * NT + n) * K + gl.arange(0, K, layout=gl.SliceLayout(0, acc32)))
    async_copy.wait_group(0)
    gl.thread_barrier()
    h_b, dh_b = h_s.load(ld), dh_s.load(ld)
    # Σ_j h ⊙ dh per channel
    state_dot_grad = gl.convert_layout(gl.sum(h_b.to(gl.float32) * dh_b.to(gl.float32), 1), gl.SliceLayout(0, acc32))
    fence_async_shared()
    d_scores = warpgroup_mma(do_s, v_s.permute((1, 0)), gl.zeros([BT, BT], gl.float32, acc64), is_async=True)
    dq_inter = warpgroup_mma(do_s, h_s.permute((1, 0)), gl.zeros([BT, KS], gl.float32, acc32), is_async=True)
    dk_inter = warpgroup_mma(v_s, dh_s.permute((1, 0)), gl.zeros([BT, KS], gl.float32, acc32), is_async=True)

    # the decay terms while the products run
    log_decay = cum - before
    key = _neg_expm1(log_decay)
    offset = cum - cum_last[None, :] * 0.5
    to_ref, from_ref, at_ref = _exp(offset), _exp(-offset), _exp(cum_last * 0.5)[None, :]
    key_s = gl.allocate_shared_memory(gl.bfloat16, [BT, KS], tok_k, (key * from_ref).to(gl.bfloat16))
    q_s = gl.allocate_shared_memory(gl.bfloat16, [BT, KS], tok_k, (q_b * to_ref).to(gl.bfloat16))
    upper_rows = gl.arange(0, BT, layout=gl.SliceLayout(1, upper_op))
    upper_cols = gl.arange(0, BT, layout=gl.SliceLayout(0, upper_op))
    upper = (upper_rows[:, None] <= upper_cols[None, :]).to(gl.float32)

    d_scores, dq_inter, dk_inter = warpgroup_mma_wait(0, deps=[d_scores, dq_inter, dk_inter])
    r64 = gl.arange(0, BT, layout=gl.SliceLayout(1, acc64))
    c64 = gl.arange(0, BT, layout=gl.SliceLayout(0, acc64))
    d_scores = gl.where(r64[:, None] >= c64[None, :], scale * d_scores, 0.0)
    ds_s = gl.allocate_shared_memory(gl.bfloat16, [BT, BT], tok_t, d_scores.to(gl.bfloat16))
    fence_async_shared()
    dk_inter = dk_inter * at_ref
    dq_acc = warpgroup_mma(ds_s, key_s, scale * dq_inter * at_ref, is_async=True)
    dk_acc = warpgroup_mma(ds_s.permute((1, 0)), q_s, dk_inter, is_async=True)
    dq_acc, dk_acc = warpgroup_mma_wait(0, deps=[dq_acc, dk_acc])
    dq_b = to_ref * dq_acc
    dk = from_ref * dk_acc
    dk_inter = from_ref * dk_inter
    # dG = q dq − k dk, and G_last's terms through h_n+1
    d_cum = q_b * dq_b - key * dk
    last_term = _exp(cum_last) * state_dot_grad + gl.sum(key * dk_inter, 0)
    d_cum = gl.where((r == BT - 1)[:, None], d_cum + last_term[None, :], d_cum)
    da_w = da[:, None] * w[None, :]  # self-augmentation's terms, none of dG
    dq_b += da_w * key
    dk += da_w * q_b
    # Σ_(s ≥ t) d_cum_s: the leading 10 mantissa bits, then the rest, each a tf32 product with the upper triangle
    leading = (d_cum.to(gl.int32, bitcast=True) & -8192).to(gl.float32, bitcast=True)
    lead_s = gl.allocate_shared_memory(gl.float32, [KS, BT], sums_sl, gl.permute(leading, (1, 0)))
    rest_s = gl.allocate_shared_memory(gl.float32, [KS, BT], sums_sl, gl.permute(d_cum - leading, (1, 0)))
    fence_async_shared()
    sums = warpgroup_mma(upper, lead_s.permute((1, 0)), gl.zeros([BT, KS], gl.float32, acc_tf32))
    sums = warpgroup_mma(upper, rest_s.permute((1, 0)), sums)
    d_log_decay = gl.convert_layout(sums, acc32) - (1.0 - key) * dk
    power = 1.0 - key  # sigmoid(−x) = key · Π (1 + α^(2^i)) (metala_core_grad_kernels._sigmoid_neg)
    product = 1.0 + power
    for _ in gl.static_range(DOUBLINGS - 1):
        power = power * power
        product += product * power
    d_gate_logits_b = d_log_decay * (key * product) * (1.0 / normalizer)

    # a chunk of strong decay is the strong launch's: its stores masked (metala_core_kernels._store_bound)
    keep = (t < gl.where(gl.min(chunk_decays, 0) < STRONG_DECAY, 0, T))[:, None]
    gl.store(dq + first * stride_dq + i_h * K + k_col + r[:, None] * stride_dq + c[None, :],
             dq_b.to(dq.dtype.element_ty), mask=keep)  # fmt: skip
    gl.store(d_gate_logits + first * stride_dg + i_h * K + k_col + r[:, None] * stride_dg + c[None, :],
             d_gate_logits_b.to(d_gate_logits.dtype.element_ty), mask=keep)  # fmt: skip

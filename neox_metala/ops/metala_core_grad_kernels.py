"""Triton kernels of MetaLA's core's chunk gradients: dq, dv and d gate logits (d log_decay chained through the
decay rule) of each chunk from the states entering it and the state gradients leaving it (ops/metala_core.py's
formulas), dq and d gate logits by one kernel here and dv by a second one (ops/metala_core_dv_kernels.py), in the
factorised or sub-chunk form that ops/metala_core_kernels.py's docstring describes; and the backward's rows of G
(decay_rows_kernel), which both read.

Imports triton: only ops/metala_core_triton.py imports this module, and only when a kernel runs.
"""

from __future__ import annotations

import os

import triton
import triton.language as tl

from .metala_core_kernels import (
    SUB_CHUNK,
    _any_strong,
    _chunk_decay,
    _chunk_decays,
    _decay_rows_offsets,
    _decay_terms,
    _exp,
    _from_start,
    _load_state,
    _load_tokens,
    _neg_expm1,
    _operand,
    _reference_factors,
    _store_bound,
    _store_tokens,
    _strong_decay,
    _sub_chunk_factors,
    _sub_chunks,
    _to_end,
    _whole_chunk,
)

PIN = tl.constexpr(os.environ.get("TRITON_INTERPRET") != "1")  # `_pinned`: the interpreter has no inline assembly


@triton.jit
def _pinned(x):
    """x (fp32) as it is, through an identity the compiler may not repeat: a tile used in two layouts is then formed
    once and converted, rather than formed again in each (the qk kernel's key: −expm1 and its exp twice per element)."""
    if PIN:
        return tl.inline_asm_elementwise("mov.b32 $0, $1;", "=r,r", [x], dtype=tl.float32, is_pure=False, pack=1)
    else:
        return x


@triton.jit
def _diagonal_blocks(x, BT: tl.constexpr, BC: tl.constexpr):
    """The (BT / BC, BC, BC) diagonal blocks of a (BT, BT) tile."""
    blocks = tl.arange(0, BT // BC)
    same = blocks[:, None, None, None] == blocks[None, None, :, None]
    return tl.sum(tl.where(same, tl.reshape(x, (BT // BC, BC, BT // BC, BC)), 0.0), 2)


@triton.jit
def _diagonal_intra_grads(d_diagonal, qf, key, cum, BT: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr):
    """`_intra_grads`' sums over the pairs within each sub-chunk, from dA's diagonal blocks (`_diagonal_blocks`),
    per element as `_diagonal_scores`."""
    q_sub, key_sub, cum_sub = _sub_chunks(qf, BT, BC, BK), _sub_chunks(key, BT, BC, BK), _sub_chunks(cum, BT, BC, BK)
    sub_rows = tl.arange(0, BC)
    dq = tl.zeros([BT // BC, BC, BK], dtype=tl.float32)
    dk = tl.zeros([BT // BC, BC, BK], dtype=tl.float32)
    for j in range(BC):
        pick = sub_rows[None, :, None] == j
        # e^(G_t − G_j) for t ≥ j (dA is zero above the diagonal)
        pair = _exp(tl.minimum(cum_sub - tl.sum(tl.where(pick, cum_sub, 0.0), 1)[:, None, :], 0.0))
        d_column = tl.sum(tl.where(sub_rows[None, None, :] == j, d_diagonal, 0.0), 2)[:, :, None]  # dA_tj
        dq += d_column * tl.sum(tl.where(pick, key_sub, 0.0), 1)[:, None, :] * pair
        dk += tl.where(pick, tl.sum(d_column * q_sub * pair, 1)[:, None, :], 0.0)
    return tl.reshape(dq, (BT, BK)), tl.reshape(dk, (BT, BK))


@triton.jit
def _intra_grads(
    d_scores, q, key, cum, cum_last, dq_inter, dk_inter, BT: tl.constexpr, BK: tl.constexpr, PRECISION: tl.constexpr,
    BF16: tl.constexpr, FACTORISED: tl.constexpr,
):  # fmt: skip
    """A chunk's (dq, dk, dk's inter-chunk term): dq_t = e^G_t dq_inter_t + Σ_s dA_ts k_s e^(G_t − G_s) and
    dk_s = e^(G_last − G_s) dk_inter_s + Σ_t dA_ts q_t e^(G_t − G_s) for causal-masked dA, in the form of `_scores`.
    The factorised form takes each inter-chunk sum, scaled by e^r, as its product's accumulator: its tile then dies in
    the dot (the K_SPLIT build, session 37: 255 registers and 24 B spilled -> 254 and none, 2,976 -> 2,928
    instructions; on an H200 at the block's shape 590 -> 578 µs per launch, session 38)."""
    qf = q.to(tl.float32)
    if FACTORISED:
        to_ref, from_ref, at_ref = _reference_factors(cum, cum_last)
        d_scores_op = _operand(d_scores, BF16)
        dq = to_ref * tl.dot(d_scores_op, _operand(key * from_ref, BF16), dq_inter * at_ref, input_precision=PRECISION)
        dk_inter = dk_inter * at_ref
        dk = from_ref * tl.dot(tl.trans(d_scores_op), _operand(qf * to_ref, BF16), dk_inter, input_precision=PRECISION)
        dk_inter = from_ref * dk_inter
    else:
        # the diagonal blocks, then dq's and dk's products in two loops: of the orders tried, the one whose sm90
        # build spills least (fewer tiles live at once), and the kernel's register budget is shared with the fast path
        d_scores_op = _operand(d_scores, BF16)
        dq, dk = _diagonal_intra_grads(_diagonal_blocks(d_scores, BT, SUB_CHUNK), qf, key, cum, BT, SUB_CHUNK, BK)
        for i in range(1, BT // SUB_CHUNK):
            to_ref, from_ref = _sub_chunk_factors(cum, i, BT, SUB_CHUNK)
            dq += to_ref * tl.dot(d_scores_op, _operand(key * from_ref, BF16), input_precision=PRECISION)
        for i in range(1, BT // SUB_CHUNK):
            to_ref, from_ref = _sub_chunk_factors(cum, i, BT, SUB_CHUNK)
            dk += from_ref * tl.dot(tl.trans(d_scores_op), _operand(qf * to_ref, BF16), input_precision=PRECISION)
        dq += _from_start(cum, cum_last, FACTORISED) * dq_inter
        dk_inter = _to_end(cum, cum_last, FACTORISED) * dk_inter
        dk += dk_inter
    return dq, dk, dk_inter


@triton.jit
def _suffix_sums(x, BT: tl.constexpr, PRECISION: tl.constexpr, SPLIT: tl.constexpr):
    """Σ_(s ≥ t) x_s over a chunk's (BT, BK) rows. In the channel split's builds (SPLIT: K_SPLIT > 1, the model's
    4-warp pick) whose dots are tf32 (bf16 and fp16 inputs), as two products with the upper triangle of ones (exact in
    tf32): x's leading 10 mantissa bits (exact), then the rest (within 2^-10 of it), so each term is kept to ~2^-20,
    as fp32's scan keeps it to its rounding. The cross-warp scan it replaces took ~210 shuffles of the qk kernel's
    sm90 build (K_SPLIT 2, 4 warps: 2,928 -> 2,696 instructions, 251 registers, none spilled); on an H200 at the
    block's shape (B32 T2048 H16) 577 -> 528 µs per launch, the core f+b 2.86 -> 2.77 ms (session 38). The scan
    elsewhere: fp32 builds (ieee dots: ~4,100 instructions and spills as one product) and the unsplit 8-warp builds
    (64 channels: 352-472 B spilled; 16-32 channels: +66-68 registers, +300 instructions)."""
    if SPLIT and PRECISION == "tf32":
        rows = tl.arange(0, BT)
        upper = (rows[:, None] <= rows[None, :]).to(tl.float32)
        leading = (x.to(tl.int32, bitcast=True) & -8192).to(tl.float32, bitcast=True)  # 0xFFFFE000: tf32's bits
        sums = tl.dot(upper, leading, input_precision="tf32")
        return tl.dot(upper, x - leading, sums, input_precision="tf32")
    else:
        return tl.cumsum(x, 0, reverse=True)


@triton.jit
def _sigmoid_neg(log_decay, key, normalizer, DOUBLINGS: tl.constexpr):
    """sigmoid(−x) = 1 − α^τ for log α = logsigmoid(x) / τ (τ the normalizer) and key = 1 − α. τ = 2^DOUBLINGS: the
    key times 1 + α^(2^i) for i < DOUBLINGS, factors in [1, 2] (no cancellation, no exp: the qk kernel's sm90 build
    2,472 -> 2,392 instructions at τ 16); else −expm1(τ log α), exact where x is large and sigmoid(−x) tiny."""
    if DOUBLINGS > 0:
        power = 1.0 - key
        product = 1.0 + power
        for _ in tl.static_range(DOUBLINGS - 1):
            power = power * power
            product += product * power
        return key * product
    else:
        return _neg_expm1(log_decay * normalizer)


@triton.jit
def _store_qk_grads(
    q_b, log_decay_b, cum, cum_last, dq, d_gate_logits, d_scores, dq_inter, dk_inter, state_dot_grad, dq_prior,
    dg_prior, scale, i_b, i_h, n, T, store_decays, stride_dq, stride_dg, normalizer, K: tl.constexpr, k_col,
    BT: tl.constexpr, BK: tl.constexpr, PRECISION: tl.constexpr, BF16: tl.constexpr, ACCUMULATE: tl.constexpr,
    FACTORISED: tl.constexpr, AUG: tl.constexpr, SPLIT: tl.constexpr, DOUBLINGS: tl.constexpr,
):  # fmt: skip
    """dq and d gate logits of one chunk (its q and decay terms as loaded before the V loop) from the loop's sums:
    d_scores = do vᵀ (all of V, unscaled, unmasked), dq_inter = do hᵀ, dk_inter = v dhᵀ and Σ_j h ⊙ dh. Everything
    here but d_scores is per channel, the choice of the factorised form included (it bounds each channel's exponents).
    `_qk_priors` says what dq_prior and dg_prior are.
    """
    rows = tl.arange(0, BT)
    key = _pinned(_neg_expm1(log_decay_b))
    d_scores = tl.where(rows[:, None] >= rows[None, :], scale * d_scores, 0.0)
    dq_b, dk, dk_inter = _intra_grads(
        d_scores, q_b, key, cum, cum_last, scale * dq_inter, dk_inter, BT, BK, PRECISION, BF16, FACTORISED
    )
    # dG = q dq − k dk, and the gradient of G_last through h_n+1 (from h_n and from the keys' decay to the end)
    d_cum = q_b.to(tl.float32) * dq_b - key * dk
    last_term = _exp(cum_last) * state_dot_grad + tl.sum(key * dk_inter, 0)
    d_cum += tl.where(rows[:, None] == BT - 1, last_term[None, :], 0.0)
    if AUG:  # a = Σ q·key·w: dq += da·key·w and d key += da·q·w (epilogue_kernels.py), neither a term of dG
        da_w = dq_prior[:, None] * dg_prior[None, :]
        dq_b += da_w * key
        dk += da_w * q_b.to(tl.float32)
    # G's sums, then the key's path (α = 1 − key: no exp of its own, which the compiler formed in another layout)
    d_log_decay_b = _suffix_sums(d_cum, BT, PRECISION, SPLIT) - (1.0 - key) * dk
    # through log α = logsigmoid(x) / normalizer: d x = d log α · sigmoid(−x) / normalizer
    d_gate_logits_b = d_log_decay_b * _sigmoid_neg(log_decay_b, key, normalizer, DOUBLINGS) * (1.0 / normalizer)
    if ACCUMULATE and not AUG:
        dq_b += dq_prior.to(tl.float32)
        d_gate_logits_b += dg_prior.to(tl.float32)
    T_store = _store_bound(store_decays, T)
    _store_tokens(dq, dq_b, i_b, i_h, n, T_store, stride_dq, K, k_col, BT, BK, False)
    _store_tokens(d_gate_logits, d_gate_logits_b, i_b, i_h, n, T_store, stride_dg, K, k_col, BT, BK, False)


@triton.jit
def _qk_priors(
    q, dq, d_gate_logits, aug_da, aug_w, i_b, i_h, n, T, stride_dq, stride_dg, H: tl.constexpr, K: tl.constexpr,
    k_col, BT: tl.constexpr, BK: tl.constexpr, ACCUMULATE: tl.constexpr, AUG: tl.constexpr,
):  # fmt: skip
    """With AUG the self-augmentation's da of the chunk's tokens (BT,) and w = aug_balance[h] (BK,) (fp32), from
    which `_store_qk_grads` forms its terms of dq and d gate logits (ops/mixer_op.py's CORE_AUG); else with
    ACCUMULATE the chunk's dq and d gate logits as they are (what it adds to); else placeholders it does not read."""
    if AUG:
        t = n * BT + tl.arange(0, BT)
        dq_prior = tl.load(aug_da + (i_b * T + t) * H + i_h, mask=t < T, other=0.0)
        cols = k_col + tl.arange(0, BK)
        dg_prior = tl.load(aug_w + i_h * K + cols, mask=cols < K, other=0.0).to(tl.float32)
    elif ACCUMULATE:
        dq_prior = _load_tokens(dq, i_b, i_h, n, T, stride_dq, K, k_col, BT, BK)
        dg_prior = _load_tokens(d_gate_logits, i_b, i_h, n, T, stride_dg, K, k_col, BT, BK)
    else:
        dq_prior, dg_prior = q, q
    return dq_prior, dg_prior


@triton.jit
def _v_block_sums(
    v, d_out, states, state_grads, d_scores, dq_inter, dk_inter, state_dot_grad,
    i_b, i_h, i_bh, n, T, NT, stride_v, H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, k_col, col,
    BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """One step of the V loop, V block [col, col + BV): d_scores += do vᵀ, dq_inter += do hᵀ, dk_inter += v dhᵀ,
    state_dot_grad += Σ_j h ⊙ dh."""
    v_b = _load_tokens(v, i_b, i_h, n, T, stride_v, V, col, BT, BV)
    d_out_b = _load_tokens(d_out, i_b, i_h, n, T, H * V, V, col, BT, BV)
    state = _load_state(states, i_bh, n, NT, K, V, k_col, col, BK, BV)
    state_grad = _load_state(state_grads, i_bh, n, NT, K, V, k_col, col, BK, BV)
    d_scores += tl.dot(d_out_b, tl.trans(v_b), input_precision=PRECISION)
    dq_inter += tl.dot(d_out_b, tl.trans(state.to(d_out_b.dtype)), input_precision=PRECISION)
    dk_inter += tl.dot(v_b, tl.trans(state_grad.to(v_b.dtype)), input_precision=PRECISION)
    state_dot_grad += tl.sum(state.to(tl.float32) * state_grad.to(tl.float32), 1)
    return d_scores, dq_inter, dk_inter, state_dot_grad


@triton.jit
def _chunk_grads(
    q, gate_logits, v, d_out, states, state_grads, cums, dq, d_gate_logits, aug_da, aug_w, scale,
    stride_q, stride_g, stride_v, stride_dq, stride_dg, normalizer, T, store_decays, NT, n, i_bh, k_col,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    PRECISION: tl.constexpr, BF16: tl.constexpr, ACCUMULATE: tl.constexpr, STORED: tl.constexpr,
    FACTORISED: tl.constexpr, AUG: tl.constexpr, SPLIT: tl.constexpr, DOUBLINGS: tl.constexpr,
):  # fmt: skip
    """`chunk_grads_kernel` on chunk n's channels [k_col, k_col + BK), its gradients stored where its rows are before
    `_store_bound(store_decays, T)`."""
    i_b, i_h = i_bh // H, i_bh % H
    # what dq and d gate logits get added to and the terms after the V loop, loaded first (metala_core_kernels.py's
    # docstring): their latency hides behind the loop
    dq_prior, dg_prior = _qk_priors(
        q, dq, d_gate_logits, aug_da, aug_w, i_b, i_h, n, T, stride_dq, stride_dg, H, K, k_col, BT, BK, ACCUMULATE, AUG
    )
    log_decay_b, cum, cum_last = _decay_terms(
        gate_logits, cums, i_b, i_h, i_bh, n, T, NT, stride_g, normalizer, K, k_col, BT, BK, STORED
    )
    q_b = _load_tokens(q, i_b, i_h, n, T, stride_q, K, k_col, BT, BK)
    d_scores = tl.zeros([BT, BT], dtype=tl.float32)  # do vᵀ
    dq_inter = tl.zeros([BT, BK], dtype=tl.float32)  # do hᵀ
    dk_inter = tl.zeros([BT, BK], dtype=tl.float32)  # v dhᵀ
    state_dot_grad = tl.zeros([BK], dtype=tl.float32)  # Σ_j h ⊙ dh
    for i_v in range(tl.cdiv(V, BV)):
        d_scores, dq_inter, dk_inter, state_dot_grad = _v_block_sums(
            v, d_out, states, state_grads, d_scores, dq_inter, dk_inter, state_dot_grad,
            i_b, i_h, i_bh, n, T, NT, stride_v, H, K, V, k_col, i_v * BV, BT, BK, BV, PRECISION,
        )  # fmt: skip
    _store_qk_grads(
        q_b, log_decay_b, cum, cum_last, dq, d_gate_logits, d_scores, dq_inter, dk_inter, state_dot_grad,
        dq_prior, dg_prior, scale, i_b, i_h, n, T, store_decays, stride_dq, stride_dg, normalizer, K, k_col, BT, BK,
        PRECISION, BF16, ACCUMULATE, FACTORISED, AUG, SPLIT, DOUBLINGS,
    )  # fmt: skip


@triton.jit
def chunk_grads_kernel(
    q, gate_logits, v, d_out, states, state_grads, decays, cums, dq, d_gate_logits, aug_da, aug_w,
    scale, stride_q, stride_g, stride_v, stride_dq, stride_dg, normalizer, T, NT, H: tl.constexpr,
    K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, PRECISION: tl.constexpr,
    BF16: tl.constexpr, ACCUMULATE: tl.constexpr, STORED: tl.constexpr = False,
    FACTORISED: tl.constexpr = True, STRONG_CHUNKS: tl.constexpr = 1, AUG: tl.constexpr = False,
    K_SPLIT: tl.constexpr = 1, DOUBLINGS: tl.constexpr = 0,
):  # fmt: skip
    """dq and d gate logits of one chunk from h_n and dh_n+1 (ops/metala_core.py's formulas); `chunk_dv_kernel`
    writes dv, so that the V loop holds no scores (with dv in this kernel's V loop, a form removed in session 26, the
    loop held five dots, its scores spilled, and its fp16 build gave wrong dq on an H200). AUG: the
    self-augmentation's terms of dq and d gate logits formed from aug_da (B, T, H) and aug_w = aug_balance (H·K)
    (`_qk_priors`), those two written rather than added to. V in blocks of BV so that only one block
    of v, do, h, dh is live at a time. STORED: the decay terms read from the rows of G, cums
    (ops/metala_core_kernels.py's `_decay_terms`). K_SPLIT: each chunk's channels over that many programs
    (ops/metala_core_triton.py's QK_K_SPLIT), each forming the chunk's do vᵀ again. DOUBLINGS: log2 of the normalizer
    where it is a power of 2, else 0 (`_sigmoid_neg`). The chunks of one form (FACTORISED: ops/metala_core_kernels.py's
    docstring): grid (N · K_SPLIT, B·H, 1) for FACTORISED, else (N / STRONG_CHUNKS, B·H, K_SPLIT)."""
    pid, i_bh, i_k = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    if FACTORISED and K_SPLIT > 1:
        # the K_SPLIT programs of a chunk one after another, so that v and do come from the L2 for all but one (a
        # split of program_id(0), not of the grid's linear index: no division by N, 104 instructions of the sm90 build)
        i_k, pid = pid % K_SPLIT, pid // K_SPLIT
    # each program's channels: BK / K_SPLIT, at least tl.dot's 16 (a program past K then stores nothing)
    BKS: tl.constexpr = max(BK // K_SPLIT, 16)
    SPLIT: tl.constexpr = K_SPLIT > 1  # `_suffix_sums`' choice
    k_col = 0  # a constant unless split: an offset of program_id(2) costs the unsplit build 64 instructions
    if K_SPLIT > 1:
        k_col = i_k * BKS
    if FACTORISED:
        # chunks of strong decay are the strong launch's: only their stores are masked here (as if past the end), as
        # output_kernel's
        store_decays = _chunk_decays(decays, i_bh, pid, NT, K, BK)
        _chunk_grads(
            q, gate_logits, v, d_out, states, state_grads, cums, dq, d_gate_logits, aug_da, aug_w,
            scale, stride_q, stride_g, stride_v, stride_dq, stride_dg, normalizer, T, store_decays, NT, pid, i_bh,
            k_col, H, K, V, BT, BKS, BV, PRECISION, BF16, ACCUMULATE, STORED, True, AUG, SPLIT, DOUBLINGS,
        )  # fmt: skip
    elif _any_strong(decays, i_bh, pid * STRONG_CHUNKS, NT, K, BK, STRONG_CHUNKS):  # one load: mostly none is
        for n in range(pid * STRONG_CHUNKS, pid * STRONG_CHUNKS + STRONG_CHUNKS):
            if _strong_decay(_chunk_decays(decays, i_bh, n, NT, K, BK)):
                _chunk_grads(
                    q, gate_logits, v, d_out, states, state_grads, cums, dq, d_gate_logits, aug_da, aug_w,
                    scale, stride_q, stride_g, stride_v, stride_dq, stride_dg, normalizer, T, _whole_chunk(BK),
                    NT, n, i_bh, k_col, H, K, V, BT, BKS, BV, PRECISION, BF16, ACCUMULATE, STORED, False, AUG, SPLIT,
                    DOUBLINGS,
                )  # fmt: skip


@triton.jit
def decay_rows_kernel(
    gate_logits, cums, stride_g, normalizer, T, NT, H: tl.constexpr, K: tl.constexpr, BT: tl.constexpr,
    BK: tl.constexpr,
):  # fmt: skip
    """Each chunk's G per token into cums ((B·H, N·BT, K) fp32), which the qk-gradient kernel reads
    (ops/metala_core_triton.py's STORED_DECAY_ROWS): a read of the logits and a write of the rows, at the memory's
    rate. A kernel of its own because the state-gradient updates, which form the same terms, took 0.58 instead of 0.27
    ms at the block benchmark's shape when they stored them too (their fp32 tiles kept for the stores: 219 registers
    instead of 128). Grid (N, B·H)."""
    n, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = i_bh // H, i_bh % H
    _, cum, _ = _chunk_decay(gate_logits, i_b, i_h, n, T, stride_g, normalizer, K, 0, BT, BK)
    block, _, cols = _decay_rows_offsets(i_bh, n, NT, K, 0, BT, BK)
    tl.store(cums + block, cum, mask=cols[None, :])

"""Triton kernels of MetaLA's epilogue (ops/epilogue_op.py launches them): self-augmentation, per-head LayerNorm and
the SiLU output gate, one program per block of tokens of one head, fp32 math (spec §2.4, 2.7–2.9).

Per token and head, with x the decay logits, τ the normalizer, w = aug_balance[h] (K,), b = gate_bias[h] (V,):
    key = −expm1(logsigmoid(x) / τ);  a = Σ_k q·key·w;  s = σ(a·v);  z = o + s
    n = (z − mean(z)) · rstd,  rstd = (var(z) + eps)^−½;  u = g + b;  y = SiLU(u) ⊙ n
Backward, for dy:
    dn = dy ⊙ SiLU(u);  du = dy ⊙ n ⊙ σ(u)(1 + u(1 − σ(u)));  dz = rstd (dn − mean(dn) − n·mean(dn ⊙ n)) = do
    dp = dz ⊙ s(1 − s);  dv = dp·a;  da = Σ_c dp ⊙ v;  dq = da·key·w;  dx = −da·q·w·α·σ(−x)/τ  (α = 1 − key)
    dw = Σ_tokens da·q·key;  db = Σ_tokens du
The forward stores mean, rstd and a (fp32, one each per token and head, 3/64 of o's bytes at V = 128 in bf16), so
the backward needs no reduction for them: its chain of row sums is mean(dn) and mean(dn·n), then da, and it reads
q and the logits only at its end (for dq, dx, dw), which keeps them out of registers until then. dw and db are
summed per program over its tokens in (BT, ·) fp32 tiles, reduced once at its end (bench/conv.py measured what a
reduction per step costs) and written as per-program partials that the launcher sums: no atomics, so the result
does not depend on the order programs run.

Layouts: every (B, T, H, D) input has each token's H·D channels contiguous and may be strided over batch and time
(views of the layer's (B, T, 3W) projection, a (seq, batch) transpose of dy): a batch and a token stride each.
stats is (3, B, T, H) contiguous, the planes mean, rstd and a (zero without AUG); y's strides are the launcher's (it
may lay y out seq-first for the out projection); do (its own pair of strides), dq and dx (one pair), dv and dg
(another) may be strided over batch and time too: contiguous tensors of their own, or views of the projection's
gradient (ops/mixer_op.py). Without AUG (aug_balance None) q, x and v are not read and dq, dx, dv, dw not written;
without BIAS, b = 0.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .metala_core_kernels import _log_sigmoid, _neg_expm1


@triton.jit
def _tile(ptr, i_b, t, cols, T, stride_b, stride_t, i_h, D: tl.constexpr):
    """(BT, BD) fp32 tile of head i_h's D channels at tokens t of batch row i_b, zero past T and D."""
    mask = (t < T)[:, None] & (cols < D)[None, :]
    ptrs = ptr + i_b * stride_b + t[:, None] * stride_t + i_h * D + cols[None, :]
    return tl.load(ptrs, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _key(x, i_b, i_h, t, ck, T, stride_xb, stride_xt, normalizer, K: tl.constexpr):
    """The decay logits, log α and key = 1 − α (BT, BK) of head i_h at tokens t."""
    logits = _tile(x, i_b, t, ck, T, stride_xb, stride_xt, i_h, K)
    log_decay = _log_sigmoid(logits) * (1.0 / normalizer)
    return logits, log_decay, _neg_expm1(log_decay)


@triton.jit
def _augmentation(v, a, i_b, i_h, t, cv, T, stride_vb, stride_vt, V: tl.constexpr):
    """v (BT, BV) of head i_h at tokens t and s = σ(a·v), zero past V (σ(0) = ½ there would enter the norm)."""
    v_t = _tile(v, i_b, t, cv, T, stride_vb, stride_vt, i_h, V)
    return v_t, tl.where((cv < V)[None, :], tl.sigmoid(a[:, None] * v_t), 0.0)


@triton.jit
def _augmented(
    o, q, x, v, aug_balance, a_ptrs, i_b, i_h, t, ck, cv, T, strides, normalizer,
    K: tl.constexpr, V: tl.constexpr, AUG: tl.constexpr, A_GIVEN: tl.constexpr,
):  # fmt: skip
    """z = o + σ(a·v) (BT, BV) and a = Σ_k q·key·w (BT,) (zero without AUG), or with A_GIVEN a loaded from a_ptrs
    (BT,), as the core's output kernel stored it, q and the logits not read."""
    stride_ob, stride_ot, stride_qb, stride_qt, stride_xb, stride_xt, stride_vb, stride_vt = strides
    z = _tile(o, i_b, t, cv, T, stride_ob, stride_ot, i_h, V)
    a = tl.zeros_like(t).to(tl.float32)
    if AUG and A_GIVEN:
        a = tl.load(a_ptrs, mask=t < T, other=0.0)
        z += _augmentation(v, a, i_b, i_h, t, cv, T, stride_vb, stride_vt, V)[1]
    elif AUG:
        q_t = _tile(q, i_b, t, ck, T, stride_qb, stride_qt, i_h, K)
        key = _key(x, i_b, i_h, t, ck, T, stride_xb, stride_xt, normalizer, K)[2]
        w = tl.load(aug_balance + i_h * K + ck, mask=ck < K, other=0.0).to(tl.float32)
        a = tl.sum(q_t * key * w[None, :], 1)  # zero q and w past K add nothing
        z += _augmentation(v, a, i_b, i_h, t, cv, T, stride_vb, stride_vt, V)[1]
    return z, a


@triton.jit
def _gate(g, gate_bias, i_b, i_h, t, cv, T, stride_gb, stride_gt, V: tl.constexpr, BIAS: tl.constexpr):
    u = _tile(g, i_b, t, cv, T, stride_gb, stride_gt, i_h, V)
    if BIAS:
        u += tl.load(gate_bias + i_h * V + cv, mask=cv < V, other=0.0).to(tl.float32)[None, :]
    return u


@triton.jit
def epilogue_forward_kernel(
    o, q, x, v, g, gate_bias, aug_balance, y, stats,
    T, plane, stride_ob, stride_ot, stride_qb, stride_qt, stride_xb, stride_xt, stride_vb, stride_vt, stride_gb,
    stride_gt, stride_yb, stride_yt, normalizer, eps,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    AUG: tl.constexpr, BIAS: tl.constexpr, A_GIVEN: tl.constexpr = False,
):  # fmt: skip
    """y and stats (mean, rstd, a: planes `plane` apart) for BT tokens of head i_h of batch row i_b; A_GIVEN: the a
    plane already holds a (`_augmented`), and is left as it is. Grid (T/BT, H, B)."""
    i_t, i_h, i_b = tl.program_id(0), tl.program_id(1), tl.program_id(2).to(tl.int64)
    t = i_t * BT + tl.arange(0, BT)
    ck, cv = tl.arange(0, BK), tl.arange(0, BV)
    strides = (stride_ob, stride_ot, stride_qb, stride_qt, stride_xb, stride_xt, stride_vb, stride_vt)
    rows = (i_b * T + t) * H + i_h
    z, a = _augmented(
        o, q, x, v, aug_balance, stats + 2 * plane + rows, i_b, i_h, t, ck, cv, T, strides, normalizer, K, V, AUG,
        A_GIVEN,
    )  # fmt: skip
    z_mean = tl.sum(z, 1) / V  # z is zero past V
    centred = tl.where((cv < V)[None, :], z - z_mean[:, None], 0.0)
    z_rstd = tl.rsqrt(tl.sum(centred * centred, 1) / V + eps)
    u = _gate(g, gate_bias, i_b, i_h, t, cv, T, stride_gb, stride_gt, V, BIAS)
    out = u * tl.sigmoid(u) * centred * z_rstd[:, None]
    mask = (t < T)[:, None] & (cv < V)[None, :]
    ptrs = y + i_b * stride_yb + t[:, None] * stride_yt + i_h * V + cv[None, :]
    tl.store(ptrs, out.to(y.dtype.element_ty), mask=mask)
    tl.store(stats + rows, z_mean, mask=t < T)
    tl.store(stats + plane + rows, z_rstd, mask=t < T)
    if not A_GIVEN:
        tl.store(stats + 2 * plane + rows, a, mask=t < T)


@triton.jit
def _store(ptr, value, i_b, t, cols, T, stride_b, stride_t, i_h, D: tl.constexpr):
    """value (BT, BD) into head i_h of a (B, T, H, D) tensor with each token's H·D channels contiguous."""
    mask = (t < T)[:, None] & (cols < D)[None, :]
    ptrs = ptr + i_b * stride_b + t[:, None] * stride_t + i_h * D + cols[None, :]
    tl.store(ptrs, value.to(ptr.dtype.element_ty), mask=mask)


@triton.jit
def epilogue_backward_kernel(
    dy, o, q, x, v, g, gate_bias, aug_balance, stats, d_o, dq, dx, dv, dg, da_out, dw_partial, db_partial,
    T, plane, stride_dyb, stride_dyt, stride_ob, stride_ot, stride_qb, stride_qt, stride_xb, stride_xt, stride_vb,
    stride_vt, stride_gb, stride_gt, stride_dob, stride_dot, stride_dqb, stride_dqt, stride_dvb, stride_dvt,
    stride_partial, normalizer,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    STEPS: tl.constexpr, STAGES: tl.constexpr, AUG: tl.constexpr, BIAS: tl.constexpr, DA: tl.constexpr = False,
):  # fmt: skip
    """Gradients of STEPS blocks of BT tokens of head i_h of batch row i_b, and this span's partial sums of dw and
    db in dw_partial[(b, span), h, :], db_partial[(b, span), h, :] (fp32; rows stride_partial apart, the two side
    by side in one buffer). DA (with AUG): da itself stored in da_out (fp32, (B, T, H) as a stats plane) instead of
    dq and dx, which the core's qk-gradient kernel then forms from it (ops/mixer_op.py's CORE_AUG). Grid (spans, H,
    B)."""
    i_span, i_h, i_b = tl.program_id(0), tl.program_id(1), tl.program_id(2).to(tl.int64)
    ck, cv = tl.arange(0, BK), tl.arange(0, BV)
    v_mask = (cv < V)[None, :]
    dw_sum = tl.zeros([BT, BK], dtype=tl.float32)
    db_sum = tl.zeros([BT, BV], dtype=tl.float32)
    for step in tl.range(STEPS, num_stages=STAGES):
        t = (i_span * STEPS + step) * BT + tl.arange(0, BT)
        rows = (i_b * T + t) * H + i_h
        z = _tile(o, i_b, t, cv, T, stride_ob, stride_ot, i_h, V)
        if AUG:
            a = tl.load(stats + 2 * plane + rows, mask=t < T, other=0.0)
            v_t, s = _augmentation(v, a, i_b, i_h, t, cv, T, stride_vb, stride_vt, V)
            z += s
        z_mean = tl.load(stats + rows, mask=t < T, other=0.0)
        z_rstd = tl.load(stats + plane + rows, mask=t < T, other=0.0)
        n = tl.where(v_mask, (z - z_mean[:, None]) * z_rstd[:, None], 0.0)
        u = _gate(g, gate_bias, i_b, i_h, t, cv, T, stride_gb, stride_gt, V, BIAS)
        d_out = _tile(dy, i_b, t, cv, T, stride_dyb, stride_dyt, i_h, V)  # zero past T: adds nothing to the sums
        gate = tl.sigmoid(u)
        dn = d_out * u * gate
        du = d_out * n * gate * (1.0 + u * (1.0 - gate))
        _store(dg, du, i_b, t, cv, T, stride_dvb, stride_dvt, i_h, V)
        db_sum += du
        dz = z_rstd[:, None] * (dn - (tl.sum(dn, 1) / V)[:, None] - n * (tl.sum(dn * n, 1) / V)[:, None])
        _store(d_o, dz, i_b, t, cv, T, stride_dob, stride_dot, i_h, V)
        if AUG:
            dp = dz * s * (1.0 - s)
            _store(dv, dp * a[:, None], i_b, t, cv, T, stride_dvb, stride_dvt, i_h, V)
            da = tl.sum(dp * v_t, 1)[:, None]  # (BT, 1)
            q_t = _tile(q, i_b, t, ck, T, stride_qb, stride_qt, i_h, K)
            logits, log_decay, key = _key(x, i_b, i_h, t, ck, T, stride_xb, stride_xt, normalizer, K)
            if DA:
                tl.store(da_out + rows, tl.sum(da, 1), mask=t < T)
            else:
                w = tl.load(aug_balance + i_h * K + ck, mask=ck < K, other=0.0).to(tl.float32)
                _store(dq, da * key * w[None, :], i_b, t, ck, T, stride_dqb, stride_dqt, i_h, K)
                # −d key / d logits = α σ(−x) / τ; α from log α, not 1 − key, which cancels where the decay is strong
                decay_grad = tl.sigmoid(-logits) * tl.exp(log_decay) * (1.0 / normalizer)
                _store(dx, -da * q_t * w[None, :] * decay_grad, i_b, t, ck, T, stride_dqb, stride_dqt, i_h, K)
            dw_sum += da * q_t * key
    span = i_b * tl.num_programs(0) + i_span
    tl.store(db_partial + span * stride_partial + i_h * V + cv, tl.sum(db_sum, 0), mask=cv < V)
    if AUG:
        tl.store(dw_partial + span * stride_partial + i_h * K + ck, tl.sum(dw_sum, 0), mask=ck < K)

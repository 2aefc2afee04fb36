"""MetaLA's epilogue (self-augmentation + per-head LayerNorm + SiLU gate, with the key it recomputes from the decay
logits) as two PyTorch custom ops with autograd, on Triton kernels (ops/epilogue_kernels.py, which has the math):
the default on the fla backend, in place of `augment_norm_gate` fused by torch.compile (config key
metala_epilogue_kernel).

Why: in a compiled block inductor runs the epilogue, the key it needs and their backward as ~6-7 kernels per layer
and micro batch at ~2.5x their byte floor (the 380M model on an H200: ~30 ms of a ~410 ms step, issue 14's 18.8%
of the token mixer's kernel time in elementwise kernels). Here: one forward kernel that stores y and, per token and
head, the LayerNorm's mean and rstd and the self-augmentation's dot product a (`stats`, fp32), one backward kernel
for every gradient, and one small sum over its per-program partials (d aug_balance, d gate_bias). As opaque ops
with declared output shapes they stay inside one compiled graph (as ops/core_op.py's).

Layout: o, q, x (decay logits), v, g (gate, without its bias) may be strided over batch and time (views of the
layer's (B, T, 3W) projection as they are; dy a (seq, batch) transpose); their channels must be contiguous within a
token, else they are copied. y is (B, T, H, V) in g's dtype, laid out (T, B, H, V) in memory with seq_first (what the
out projection reads after the layer's transpose); the gradients come back contiguous in their inputs' dtypes (bf16
in training: autograd adds them to the core's and casts the core's fp32 d gate logits to bf16 anyway), d aug_balance
and d gate_bias in the parameters' dtypes, summed in fp32.

The CPU kernels are the same math in PyTorch, so the CPU tests check the op, its autograd and its registrations
(in fp64 too); tests/ops/test_epilogue_triton.py checks the Triton kernels against the fp64 reference.
"""

from __future__ import annotations

import functools

import torch

from .partial_sums import sum_partials
from .reference import HEAD_NORM_EPS
from .triton_launch import launch

# (tokens per block, warps[, registers per thread: Triton's maxnreg]): chosen by their sm90 builds
# (bench/epilogue_build.py, Triton 3.6, bf16, H8 K64 V128), then timed (bench/epilogue.py on an H200, B8 T2048 bf16).
# Forward (2026-11-29): 16 tokens of a 128-channel head at 4 warps, 48 registers: 0.052 ms = 1.3x its byte floor,
# within 2% of the best of 8 blocks. Backward, since the forward stores a (session 17, 2026-11-30): 8 tokens at 4
# warps take 150 registers (three programs per SM) and 0.105 ms = 1.5x its floor; capped at 128 registers, without
# spills, four programs per SM and 0.099 ms, the best of 11 (4 to 16 tokens, 2 to 8 warps, 16-32 steps, 2-3 stages;
# 0.133 ms before a was stored). GPU tests of the capped blocks: passed (session 17, call 2).
FORWARD_BLOCKS = (16, 4)
BACKWARD_BLOCKS = (8, 4, 128)
# The backward program walks STEPS blocks of tokens, so that its d aug_balance and d gate_bias partials stay small:
# B·T / (BT · STEPS) × H·(K + V) fp32 = 0.75 MB at B=8, T=2048, H=8, V=128. 16 steps: 0.161 ms against 0.180 at 8
# and 0.216 at 4 on an H200 (bench/epilogue.py, B8 T2048 bf16, 2026-11-29; the other blocks swept were slower).
BACKWARD_STEPS = 16
# Software-pipeline stages of the backward's step loop (tl.range num_stages): above 1 the next steps' loads are
# issued as cp.async into shared memory while this step computes (sm90 build, bf16: 46 cp.async and 111 registers at
# 2 stages; plain loads and 124 registers at 1). On an H200 (bench/epilogue.py, B8 T2048 bf16, 2026-11-30) at (8, 8)
# and 16 steps: 0.149 ms at 3 stages, 0.155 at 1, 0.166 at 2; at (8, 4) 0.132 ms at 3 stages, 0.144 at 2 ((4, 4), 32
# steps, 3 stages: 0.135). GPU tests of (8, 4) and (4, 4) at 3 stages: passed (2026-11-30, session 15).
BACKWARD_STAGES = 3
_TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@functools.cache
def _kernels():
    from . import epilogue_kernels

    return epilogue_kernels


def _cdiv(n: int, block: int) -> int:
    return -(-n // block)


def _block(n: int) -> int:
    return 1 << (n - 1).bit_length()


def _token_rows(t: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """(t, batch stride, token stride): t with each token's H·D channels contiguous, else a contiguous copy."""
    heads, dim = t.shape[-2:]
    if t.stride(-1) != 1 or (heads > 1 and t.stride(-2) != dim):
        t = t.contiguous()
    return t, t.stride(0), t.stride(1)


def _output(g: torch.Tensor, seq_first: bool) -> torch.Tensor:
    """An empty (B, T, H, V) tensor in g's dtype, laid out (T, B, H, V) in memory if seq_first."""
    batch, seq, heads, head_v_dim = g.shape
    if seq_first:
        return g.new_empty(seq, batch, heads, head_v_dim).transpose(0, 1)
    return g.new_empty(g.shape)


def _check_triton_inputs(o, q, v) -> None:
    if o.dtype not in _TRITON_DTYPES or q.dtype not in _TRITON_DTYPES or v.dtype not in _TRITON_DTYPES:
        raise ValueError(f"epilogue Triton kernels take fp32, bf16 or fp16, got o {o.dtype}, q {q.dtype}, v {v.dtype}")
    if o.shape[1] == 0:
        raise ValueError(f"epilogue: no tokens, o has shape {tuple(o.shape)}")


def _strided(*tensors):
    """The tensors in the kernels' layout and their (batch, token) strides, flattened, in order."""
    rows = [_token_rows(t) for t in tensors]
    return [t for t, _, _ in rows], [stride for _, *strides in rows for stride in strides]


def stats_for(o: torch.Tensor) -> torch.Tensor:
    """An empty (3, B, T, H) tensor for the planes mean, rstd and a (fp32; fp64 for fp64 inputs: the CPU tests)."""
    return o.new_empty(3, *o.shape[:3], dtype=torch.promote_types(o.dtype, torch.float32))


def epilogue_forward_triton(
    o, q, x, v, g, gate_bias, aug_balance, normalizer, eps=HEAD_NORM_EPS, seq_first=False, blocks=FORWARD_BLOCKS,
    stats=None,
):  # fmt: skip
    """-> (y (B, T, H, V) in g's dtype, stats (3, B, T, H) fp32: mean, rstd and a per token and head). `stats`
    (with aug_balance): such a tensor whose a plane already holds a (`stats_for`; the core's output kernel wrote it,
    ops/mixer_op.py's CORE_A): a is read from it, q and x are not, and the other two planes are written."""
    _check_triton_inputs(o, q, v)
    (o, q, x, v, g), strides = _strided(o, q, x, v, g)
    batch, seq, heads, head_v_dim = o.shape
    head_k_dim = q.shape[-1]
    block_t, warps = blocks
    y = _output(g, seq_first)
    aug, bias = aug_balance is not None, gate_bias is not None
    a_given = stats is not None
    if a_given and (not aug or stats.shape != (3, *o.shape[:3]) or not stats.is_contiguous()):
        raise ValueError(f"epilogue: a given needs aug_balance and stats as stats_for(o) makes, got {stats.shape}")
    stats = stats if a_given else stats_for(o)
    launch(
        _kernels().epilogue_forward_kernel, (_cdiv(seq, block_t), heads, batch),
        o, q, x, v, g, gate_bias.contiguous() if bias else o, aug_balance.contiguous() if aug else o, y, stats,
        seq, stats[0].numel(), *strides, y.stride(0), y.stride(1), float(normalizer), float(eps),
        H=heads, K=head_k_dim, V=head_v_dim, BT=block_t, BK=_block(head_k_dim), BV=_block(head_v_dim),
        AUG=aug, BIAS=bias, A_GIVEN=a_given, num_warps=warps,
    )  # fmt: skip
    return y, stats


def epilogue_backward_triton(
    d_out, o, q, x, v, g, gate_bias, aug_balance, stats, normalizer, blocks=BACKWARD_BLOCKS, steps=BACKWARD_STEPS,
    grads=None, stages=BACKWARD_STAGES, da=None,
):  # fmt: skip
    """-> (do, dq, dx, dv, dg (contiguous, their inputs' dtypes), d gate_bias, d aug_balance (their dtypes)); dq, dx,
    dv and d aug_balance are empty (0 elements) without aug_balance, d gate_bias without gate_bias. `grads`: (dq, dx,
    dv, dg) to write into instead, views of the projection's gradient (ops/mixer_op.py): dq and dx with one pair of
    (batch, token) strides, dv and dg with another, each token's channels contiguous. `da` (with aug_balance): a
    (B, T, H) fp32 tensor that gets the self-augmentation's da = d a instead of dq and dx getting theirs (they are
    left as they are; the core's kernels form them from da, ops/mixer_op.py's CORE_AUG)."""
    _check_triton_inputs(o, q, v)
    (d_out, o, q, x, v, g), strides = _strided(d_out, o, q, x, v, g)
    batch, seq, heads, head_v_dim = o.shape
    head_k_dim = q.shape[-1]
    block_t, warps, *register_cap = blocks  # (tokens, warps[, registers per thread: Triton's maxnreg])
    steps = max(1, min(steps, _cdiv(seq, block_t)))  # a short sequence needs no empty steps
    spans = _cdiv(seq, block_t * steps)
    aug, bias = aug_balance is not None, gate_bias is not None
    if da is not None and (not aug or da.shape != o.shape[:3] or da.dtype != torch.float32 or not da.is_contiguous()):
        raise ValueError(f"epilogue: da must be a contiguous (B, T, H) fp32 tensor with aug_balance, got {da.shape}")
    d_o = torch.empty_like(o)
    if grads is None:
        dq, dx, dv = (torch.empty_like(t) if aug else t.new_empty(0) for t in (q, x, v))
        dg = torch.empty_like(g)
    else:
        dq, dx, dv, dg = grads
        if (
            _token_rows(dq)[0] is not dq
            or _token_rows(dv)[0] is not dv
            or dx.stride() != dq.stride()
            or (dg.stride() != dv.stride())
        ):
            raise ValueError("epilogue: dq, dx (and dv, dg) to write into must share strides, channels contiguous")
    k_strides = (dq.stride(0), dq.stride(1)) if aug or grads is not None else (0, 0)
    # d aug_balance's and d gate_bias's per-program partial sums side by side: one reduction for both
    aug_width = heads * head_k_dim if aug else 0
    partial = o.new_empty(batch * spans, aug_width + heads * head_v_dim, dtype=torch.float32)
    dw_partial, db_partial = partial[:, :aug_width] if aug else partial, partial[:, aug_width:]
    launch(
        _kernels().epilogue_backward_kernel, (spans, heads, batch),
        d_out, o, q, x, v, g, gate_bias.contiguous() if bias else o, aug_balance.contiguous() if aug else o,
        stats.contiguous(), d_o, dq if aug else o, dx if aug else o, dv if aug else o, dg, o if da is None else da,
        dw_partial, db_partial,
        seq, stats[0].numel(), *strides, d_o.stride(0), d_o.stride(1), *k_strides, dg.stride(0), dg.stride(1),
        partial.stride(0), float(normalizer),
        H=heads, K=head_k_dim, V=head_v_dim, BT=block_t, BK=_block(head_k_dim), BV=_block(head_v_dim),
        STEPS=steps, STAGES=stages, AUG=aug, BIAS=bias, DA=da is not None, num_warps=warps,
        **({"maxnreg": register_cap[0]} if register_cap else {}),
    )  # fmt: skip
    d_aug = d_bias = o.new_empty(0)
    if bias or aug:  # one launch for both sums, each written in its parameter's dtype (fresh tensors: no aliases)
        dtypes = (aug_balance.dtype if aug else torch.float32, gate_bias.dtype if bias else torch.float32)
        sums = sum_partials(partial, dtypes, splits=(aug_width, partial.shape[1] - aug_width))
        d_aug = sums[0].view(aug_balance.shape) if aug else d_aug
        d_bias = sums[1].view(gate_bias.shape) if bias else d_bias
    return d_o, dq, dx, dv, dg, d_bias, d_aug


# --- the same math in PyTorch: the ops' CPU kernels -----------------------------------------------------------


def _wide(t):
    return t.to(torch.promote_types(t.dtype, torch.float32))  # fp32 math for half inputs; fp64 stays fp64 (tests)


def _augmented_torch(o, q, x, v, aug_balance, normalizer, a=None):
    """z = o + σ(a·v) and, with aug_balance, (key, log α, w, a, σ(a·v)) for the backward (else None); a (B, T, H)
    as the forward stored it, else computed."""
    from .metala import decay_and_key

    z = _wide(o)
    if aug_balance is None:
        return z, None
    log_decay, key = decay_and_key(x, normalizer)
    q, v = _wide(q), _wide(v)
    w = aug_balance.to(z.dtype).view(q.shape[-2:])
    a = (q * key * w).sum(-1, keepdim=True) if a is None else a.to(z.dtype)[..., None]  # (B, T, H, 1)
    s = torch.sigmoid(a * v)
    return z + s, (key.to(z.dtype), log_decay.to(z.dtype), w, a, s)


def _gate_torch(g, gate_bias):
    u = _wide(g)
    return u if gate_bias is None else u + gate_bias.to(u.dtype).view(g.shape[-2:])


def epilogue_forward_torch(o, q, x, v, g, gate_bias, aug_balance, normalizer, eps=HEAD_NORM_EPS, seq_first=False):
    z, aug = _augmented_torch(o, q, x, v, aug_balance, normalizer)
    stats = stats_for(o)
    mean, rstd, a = stats
    mean.copy_(z.mean(-1))
    rstd.copy_(torch.rsqrt(z.var(-1, unbiased=False) + eps))
    if aug is None:
        a.zero_()
    else:
        a.copy_(aug[3][..., 0])
    u = _gate_torch(g, gate_bias)
    y = _output(g, seq_first)
    y.copy_(torch.nn.functional.silu(u) * (z - mean[..., None]) * rstd[..., None])
    return y, stats


def epilogue_backward_torch(d_out, o, q, x, v, g, gate_bias, aug_balance, stats, normalizer):
    mean, rstd, a = stats
    z, aug = _augmented_torch(o, q, x, v, aug_balance, normalizer, a)
    n = (z - mean[..., None]) * rstd[..., None]
    u = _gate_torch(g, gate_bias)
    d_out, gate = d_out.to(z.dtype), torch.sigmoid(u)
    dn = d_out * u * gate
    du = d_out * n * gate * (1 + u * (1 - gate))
    dz = rstd[..., None] * (dn - dn.mean(-1, keepdim=True) - n * (dn * n).mean(-1, keepdim=True))
    d_bias = o.new_empty(0)
    if gate_bias is not None:
        d_bias = du.sum((0, 1)).to(gate_bias.dtype).view(gate_bias.shape)
    grads = [dz.to(o.dtype).contiguous()]
    if aug is None:
        grads += [t.new_empty(0) for t in (q, x, v)]
        d_aug = o.new_empty(0)
    else:
        key, log_decay, w, a, s = aug
        dp = dz * s * (1 - s)
        da = (dp * _wide(v)).sum(-1, keepdim=True)
        dq = da * key * w
        dx = -da * _wide(q) * w * torch.sigmoid(-_wide(x)) * log_decay.exp() / normalizer
        grads += [t.to(like.dtype).contiguous() for t, like in ((dq, q), (dx, x), (dp * a, v))]
        d_aug = (da * _wide(q) * key).sum((0, 1)).to(aug_balance.dtype).view(aug_balance.shape)
    return (*grads, du.to(g.dtype).contiguous(), d_bias, d_aug)


# --- custom ops ------------------------------------------------------------------------------------------------


@torch.library.custom_op("neox_metala::epilogue_forward", mutates_args=(), device_types="cuda")
def epilogue_forward(
    o: torch.Tensor,
    q: torch.Tensor,
    x: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    gate_bias: torch.Tensor | None,
    aug_balance: torch.Tensor | None,
    normalizer: float,
    eps: float,
    seq_first: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (y (B, T, H, V) in g's dtype, seq-first in memory if seq_first; stats (3, B, T, H) fp32: mean, rstd, a)."""
    return epilogue_forward_triton(o, q, x, v, g, gate_bias, aug_balance, normalizer, eps, seq_first)


@epilogue_forward.register_fake
def _(o, q, x, v, g, gate_bias, aug_balance, normalizer, eps, seq_first):
    return _output(g, seq_first), stats_for(o)


@epilogue_forward.register_kernel("cpu")
def _(o, q, x, v, g, gate_bias, aug_balance, normalizer, eps, seq_first):
    return epilogue_forward_torch(o, q, x, v, g, gate_bias, aug_balance, normalizer, eps, seq_first)


@torch.library.custom_op("neox_metala::epilogue_backward", mutates_args=(), device_types="cuda")
def epilogue_backward(
    d_out: torch.Tensor,
    o: torch.Tensor,
    q: torch.Tensor,
    x: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    gate_bias: torch.Tensor | None,
    aug_balance: torch.Tensor | None,
    stats: torch.Tensor,
    normalizer: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (do, dq, dx, dv, dg, d gate_bias, d aug_balance); empty tensors for what has no gradient (no aug_balance:
    dq, dx, dv, d aug_balance; no gate_bias: d gate_bias)."""
    return epilogue_backward_triton(d_out, o, q, x, v, g, gate_bias, aug_balance, stats, normalizer)


@epilogue_backward.register_fake
def _(d_out, o, q, x, v, g, gate_bias, aug_balance, stats, normalizer):
    aug = aug_balance is not None
    like = lambda t, present: t.new_empty(t.shape if present else (0,))  # noqa: E731
    d_bias = like(gate_bias, True) if gate_bias is not None else o.new_empty(0)
    d_aug = like(aug_balance, True) if aug else o.new_empty(0)
    return (o.new_empty(o.shape), like(q, aug), like(x, aug), like(v, aug), g.new_empty(g.shape), d_bias, d_aug)


@epilogue_backward.register_kernel("cpu")
def _(d_out, o, q, x, v, g, gate_bias, aug_balance, stats, normalizer):
    return epilogue_backward_torch(d_out, o, q, x, v, g, gate_bias, aug_balance, stats, normalizer)


def _setup_context(ctx, inputs, output):
    o, q, x, v, g, gate_bias, aug_balance, normalizer, _, _ = inputs
    _, stats = output
    ctx.mark_non_differentiable(stats)
    ctx.save_for_backward(o, q, x, v, g, gate_bias, aug_balance, stats)
    ctx.normalizer = normalizer


def _backward(ctx, d_out, _d_stats):
    o, q, x, v, g, gate_bias, aug_balance, stats = ctx.saved_tensors
    d_o, dq, dx, dv, dg, d_bias, d_aug = epilogue_backward(
        d_out, o, q, x, v, g, gate_bias, aug_balance, stats, ctx.normalizer
    )
    aug = aug_balance is not None
    d_aug_parts = (dq, dx, dv) if aug else (None, None, None)
    return (d_o, *d_aug_parts, dg, d_bias if gate_bias is not None else None, d_aug if aug else None, None, None, None)


epilogue_forward.register_autograd(_backward, setup_context=_setup_context)


def augment_norm_gate_op(
    o, q, gate_logits, v, gate, gate_bias=None, aug_balance=None, normalizer=16.0, eps=HEAD_NORM_EPS, seq_first=False
) -> torch.Tensor:
    """y = SiLU(gate + gate_bias) ⊙ LayerNorm_head(o + σ((Σ_k q·key·w)·v)), key = −expm1(logsigmoid(gate_logits) / τ),
    w = aug_balance viewed (H, K), differentiable: ops/metala.py's augment_norm_gate(o, q, key, v, aug_balance,
    gate + gate_bias, eps) with the key formed inside (τ = normalizer). o, v, gate [B, T, H, V]; q, gate_logits
    [B, T, H, K]; gate_bias [H·V] or None; aug_balance [H·K] or None (no self-augmentation). Returns y [B, T, H, V]
    in gate's dtype, laid out (T, B, H, V) in memory if seq_first.

    Example:
        >>> y = augment_norm_gate_op(o, q, logits, v, gate, gate_bias, aug_balance, 16.0)  # bf16 (8, 2048, 8, ·)
    """
    heads, head_k_dim = q.shape[-2:]
    if o.dim() != 4 or gate_logits.shape != q.shape or v.shape != o.shape or gate.shape != o.shape:
        raise ValueError(
            f"epilogue: o, v, gate must be (B, T, H, V) and q, gate_logits (B, T, H, K) alike; got o {tuple(o.shape)}, "
            f"q {tuple(q.shape)}, gate_logits {tuple(gate_logits.shape)}, v {tuple(v.shape)}, gate {tuple(gate.shape)}"
        )
    if aug_balance is not None and aug_balance.numel() != heads * head_k_dim:
        raise ValueError(
            f"aug_balance has {aug_balance.numel()} entries, expected heads * head_k_dim = {heads} * {head_k_dim}"
        )
    if gate_bias is not None and gate_bias.numel() != o.shape[-2] * o.shape[-1]:
        raise ValueError(f"gate_bias has {gate_bias.numel()} entries, expected heads * head_v_dim = {o.shape[-2:]}")
    return epilogue_forward(o, q, gate_logits, v, gate, gate_bias, aug_balance, normalizer, eps, seq_first)[0]

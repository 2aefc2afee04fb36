"""MetaLA's token mix between a layer's projections as one PyTorch custom op with autograd: MetaLA's own core kernels
(ops/metala_core_triton.py) and epilogue kernels (ops/epilogue_op.py) on one (B, T, 3W) projection
[q | decay logits | v | gate]. The default on the fla backend when both are (metala_core_kernel: metala,
metala_epilogue_kernel: triton) and no documents are packed.

Why one op: the projection's gradient is the sum of the epilogue's and the core's gradients of q, the decay logits
and v, next to the gate's. As two ops each returned tensors of its own and a compiled kernel summed them into the
projection's gradient (the 380M model on an H200: 6.4 ms of a 381 ms step, ~9 KB read and 4 KB written per token
and layer, and those separate gradients alive at the backward's peak). Here the backward allocates the projection's
gradient once; the epilogue's kernel writes its parts, then the core's kernels add theirs in place (with CORE_AUG the
core forms the epilogue's dq and d logits terms itself). Rounding:
the epilogue's parts are rounded to the projection's dtype as before, and the core adds its fp32 values to them in
fp32 and rounds once (the two ops rounded the core's dq and dv on their own as well).

Saves for backward what the two ops saved: the projection, the core's output o, the epilogue's stats (the
LayerNorm's mean and rstd, the self-augmentation's dot product), the core's chunk states if kept. The CPU kernels
compose the two ops' CPU kernels, so the CPU tests check the op, its autograd and its registrations (in fp64);
tests/ops/test_mixer_triton.py checks the Triton path.
"""

from __future__ import annotations

import torch

from . import epilogue_op, metala_core_op
from .options import projection_widths

CORE_AUG = True
"""With self-augmentation, its terms of dq and d decay logits are formed by the core's qk-gradient kernel from da
(one fp32 per token and head, which the epilogue's backward writes instead of those two parts) rather than written by
the epilogue and read back by the qk kernel to add to: 2 x B·T·H·K fewer elements written and read (268 MB each way
at the block benchmark's B32 T2048 H16 K64 in bf16), and the two rounded once instead of twice. dv's term stays the
epilogue's (the dv kernel adds to it). On an H200 (bench/layer.py, session 25): block 14.02 against 14.07 / 14.10 ms.
Read at every backward, so that tests and benchmarks can take either path."""
CORE_A = True
"""The forward's counterpart: with self-augmentation the core's output kernel, which holds q and the key, writes
a = Σ_k q·key·w into the epilogue's stats, so that the epilogue's forward reads neither q nor the logits (268 MB at
the block's shape). sm90 bf16 output build at 4 warps: 166 registers against 159 (three programs per SM either way).
On an H200 (bench/layer.py, session 26): block 13.49 against 13.65 / 13.70 ms, epilogue forward 0.39 -> 0.28 ms,
output kernel 0.46 -> 0.49. Read at every forward."""


def _parts(projected: torch.Tensor, heads: int) -> list[torch.Tensor]:
    """(B, T, 3W) -> q, decay logits (B, T, H, W/(2H)) and v, gate (B, T, H, W/H): strided views."""
    parts = projected.split(projection_widths(projected.shape[-1] // 3), dim=-1)
    return [part.unflatten(-1, (heads, -1)) for part in parts]


def _scale(q: torch.Tensor) -> float:
    return q.shape[-1] ** -0.5


def mixer_forward_triton(projected, gate_bias, aug_balance, heads, normalizer, eps, seq_first, keep_states):
    """-> (y (B, T, H, V), seq-first in memory if seq_first; o; the epilogue's stats; the core's states or None)."""
    from .metala_core_triton import metala_core_fwd

    q, x, v, g = _parts(projected, heads)
    stats = epilogue_op.stats_for(v) if aug_balance is not None and CORE_A else None  # o's (B, T, H) and dtype
    augmentation = None if stats is None else (stats[2], aug_balance)
    o, states = metala_core_fwd(q, x, v, _scale(q), normalizer, metala_core_op.CHUNK_SIZE, keep_states, augmentation)
    y, stats = epilogue_op.epilogue_forward_triton(
        o, q, x, v, g, gate_bias, aug_balance, normalizer, eps, seq_first, stats=stats
    )
    return y, o, stats, states


def mixer_backward_triton(dy, projected, o, stats, states, gate_bias, aug_balance, heads, normalizer):
    """-> (d projected (B, T, 3W) contiguous, d gate_bias, d aug_balance (empty where absent)). `states`: the
    forward's, or None to recompute them."""
    from .metala_core_triton import metala_core_bwd

    q, x, v, g = _parts(projected, heads)
    d_projected = torch.empty(projected.shape, dtype=projected.dtype, device=projected.device)
    dq, dx, dv, dg = _parts(d_projected, heads)
    in_core = aug_balance is not None and CORE_AUG
    da = torch.empty(q.shape[:3], dtype=torch.float32, device=q.device) if in_core else None
    d_o, *_, d_bias, d_aug = epilogue_op.epilogue_backward_triton(
        dy, o, q, x, v, g, gate_bias, aug_balance, stats, normalizer, grads=(dq, dx, dv, dg), da=da
    )
    # without self-augmentation the epilogue leaves dq, dx, dv alone: the core writes them instead of adding
    metala_core_bwd(
        q, x, v, _scale(q), normalizer, d_o, states, metala_core_op.CHUNK_SIZE, grads=(dq, dx, dv),
        accumulate=aug_balance is not None, augmentation=(da, aug_balance) if in_core else None,
    )  # fmt: skip
    return d_projected, d_bias, d_aug


def _no_states(projected):
    return projected.new_empty(0)


@torch.library.custom_op("neox_metala::mixer_forward", mutates_args=(), device_types="cuda")
def mixer_forward(
    projected: torch.Tensor,
    gate_bias: torch.Tensor | None,
    aug_balance: torch.Tensor | None,
    heads: int,
    normalizer: float,
    eps: float,
    seq_first: bool,
    keep_states: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (y, o, the epilogue's stats, the core's states or an empty tensor)."""
    y, o, stats, states = mixer_forward_triton(
        projected, gate_bias, aug_balance, heads, normalizer, eps, seq_first, keep_states
    )
    return y, o, stats, states if keep_states else _no_states(projected)


def _forward_by_the_two_ops(projected, gate_bias, aug_balance, heads, normalizer, eps, seq_first, keep_states):
    """The forward as the core's and the epilogue's own ops compute it: their fake kernels (shapes, under
    torch.compile) or their CPU kernels, whichever the tensors dispatch to."""
    q, x, v, g = _parts(projected, heads)
    o, states = metala_core_op.metala_core_forward(q, x, v, _scale(q), normalizer, keep_states)
    y, stats = epilogue_op.epilogue_forward(o, q, x, v, g, gate_bias, aug_balance, normalizer, eps, seq_first)
    return y, o, stats, states


mixer_forward.register_fake(_forward_by_the_two_ops)
mixer_forward.register_kernel("cpu")(_forward_by_the_two_ops)


@torch.library.custom_op("neox_metala::mixer_backward", mutates_args=(), device_types="cuda")
def mixer_backward(
    dy: torch.Tensor,
    projected: torch.Tensor,
    o: torch.Tensor,
    stats: torch.Tensor,
    states: torch.Tensor,
    gate_bias: torch.Tensor | None,
    aug_balance: torch.Tensor | None,
    heads: int,
    normalizer: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (d projected, d gate_bias, d aug_balance); empty tensors for the parameters that are absent. `states`
    empty: recomputed."""
    return mixer_backward_triton(
        dy, projected, o, stats, states if states.numel() else None, gate_bias, aug_balance, heads, normalizer
    )


@mixer_backward.register_fake
def _(dy, projected, o, stats, states, gate_bias, aug_balance, heads, normalizer):
    d_bias = gate_bias.new_empty(gate_bias.shape) if gate_bias is not None else o.new_empty(0)
    d_aug = aug_balance.new_empty(aug_balance.shape) if aug_balance is not None else o.new_empty(0)
    return projected.new_empty(projected.shape), d_bias, d_aug


@mixer_backward.register_kernel("cpu")
def _(dy, projected, o, stats, states, gate_bias, aug_balance, heads, normalizer):
    q, x, v, g = _parts(projected, heads)
    d_o, dq, dx, dv, dg, d_bias, d_aug = epilogue_op.epilogue_backward(
        dy, o, q, x, v, g, gate_bias, aug_balance, stats, normalizer
    )
    core = metala_core_op.metala_core_backward(q, x, v, states, d_o, _scale(q), normalizer)
    if aug_balance is not None:  # in the core's (wider) dtypes, rounded once, as the GPU kernels add
        core = [mine + theirs for mine, theirs in zip(core, (dq, dx, dv))]
    parts = [t.to(projected.dtype).flatten(-2) for t in (*core, dg)]
    return torch.cat(parts, dim=-1), d_bias, d_aug


def _setup_context(ctx, inputs, output):
    projected, gate_bias, aug_balance, heads, normalizer, *_ = inputs
    _, o, stats, states = output
    ctx.mark_non_differentiable(o, stats, states)
    ctx.save_for_backward(projected, o, stats, states, gate_bias, aug_balance)
    ctx.heads, ctx.normalizer = heads, normalizer


def _backward(ctx, dy, _d_o, _d_stats, _d_states):
    projected, o, stats, states, gate_bias, aug_balance = ctx.saved_tensors
    d_projected, d_bias, d_aug = mixer_backward(
        dy, projected, o, stats, states, gate_bias, aug_balance, ctx.heads, ctx.normalizer
    )
    d_bias = d_bias if gate_bias is not None else None
    d_aug = d_aug if aug_balance is not None else None
    return d_projected, d_bias, d_aug, None, None, None, None, None


mixer_forward.register_autograd(_backward, setup_context=_setup_context)


def metala_mixer(projected, gate_bias, aug_balance, heads: int, normalizer: float, eps: float, seq_first: bool,
                 keep_states: bool = False) -> torch.Tensor:  # fmt: skip
    """y (B, T, H, V) of ops/metala.py's token_mix on the projection [q | decay logits | v | gate] (B, T, 3W) with
    MetaLA's own core and epilogue kernels, differentiable; laid out (T, B, H, V) in memory if seq_first. gate_bias
    [W] or None; aug_balance [W/2] or None (no self-augmentation); keep_states: the core's chunk states saved for
    the backward rather than recomputed.

    Example:
        >>> y = metala_mixer(projected, gate_bias, aug_balance, heads=8, normalizer=16.0, eps=1e-5, seq_first=True)
    """
    return mixer_forward(projected, gate_bias, aug_balance, heads, normalizer, eps, seq_first, keep_states)[0]

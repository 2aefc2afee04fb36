"""MetaLA's token mix and the out projection's local GEMM as one PyTorch custom op with autograd: ops/mixer_op.py's
forward followed by y · W_outᵀ, and a backward whose first kernel is the out projection's input gradient with the
epilogue's backward in its epilogue (ops/out_grad_op.py), then the core's gradient kernels as in mixer_op.

Why: as two steps the backward wrote dy = d out · W_out (cuBLAS) and the epilogue's kernel read it back with o, v,
the gate, q and the logits; fused, dy stays in the GEMM's registers, and the epilogue's traffic was meant to run beside
other programs' GEMM main loops. Measured (bench/out_grad.py; docs/benchmarks.md, session 54) it does not: 1-2
programs fit an SM, so the fused kernel is slower than cuBLAS + the epilogue kernel, and FUSED is off.

The op returns the rank's partial out projection (T, B, hidden): the layer all-reduces it across tensor-parallel ranks
as megatron-core's RowParallelLinear does after its GEMM (neox_metala.parallel.reduce_row_parallel).

Saves what mixer_op saves and y (the weight gradient's input, which the out projection's autograd kept before). The
CPU kernels compose mixer_op's CPU kernels with the GEMMs, so the CPU tests check the op, its autograd and its
registrations; tests/ops/test_out_grad_triton.py checks the fused kernel, tests/ops/test_mixer_triton.py the op.
"""

from __future__ import annotations

import torch

from . import mixer_op

FUSED = False
"""Read at every forward (ops.metala.metala_mix_out): True runs this op on the one-op route, False the mix and
megatron-core's out projection as separate steps. Off: timed on an H100 in session 54 (docs/benchmarks.md) the block
ran 0.900× attention with it against 0.862× without, its Triton GEMM 1.37× cuBLAS's and its epilogue slower than the
separate kernel; the GPU tests that ran pass (the kernel's 12, the op's two with self-augmentation)."""
_DTYPES = (torch.bfloat16, torch.float16, torch.float32)


def supports(projected: torch.Tensor, weight: torch.Tensor, heads: int) -> bool:
    """Whether the op takes these shapes: the weight (hidden, W) in the projection's dtype and, for the GPU's fused
    kernel, a head's V channels one power-of-two tile of 16 to 128 and rows of 16-byte multiples (tensor
    descriptors) in bf16, fp16 or fp32 (the CPU kernels take any)."""
    width = projected.shape[-1] // 3
    if weight.dim() != 2 or weight.shape[1] != width or weight.dtype != projected.dtype:
        return False
    if projected.device.type == "cpu":
        return True
    head_v_dim, size = width // heads, projected.element_size()
    return (
        projected.dtype in _DTYPES
        and head_v_dim in (16, 32, 64, 128)
        and (weight.shape[0] * size) % 16 == 0
        and (width * size) % 16 == 0
    )


def mixer_out_forward_triton(projected, gate_bias, aug_balance, weight, heads, normalizer, eps, keep_states):
    y, o, stats, states = mixer_op.mixer_forward_triton(
        projected, gate_bias, aug_balance, heads, normalizer, eps, True, keep_states
    )
    mixed = y.flatten(-2).transpose(0, 1)  # (T, B, W), contiguous
    return mixed @ weight.t(), mixed, o, stats, states if keep_states else mixer_op._no_states(projected)


@torch.library.custom_op("neox_metala::mixer_out_forward", mutates_args=(), device_types="cuda")
def mixer_out_forward(
    projected: torch.Tensor,
    gate_bias: torch.Tensor | None,
    aug_balance: torch.Tensor | None,
    weight: torch.Tensor,
    heads: int,
    normalizer: float,
    eps: float,
    keep_states: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (out (T, B, hidden), y (T, B, W), o, the epilogue's stats, the core's states or an empty tensor)."""
    return mixer_out_forward_triton(projected, gate_bias, aug_balance, weight, heads, normalizer, eps, keep_states)


def _forward_by_the_ops(projected, gate_bias, aug_balance, weight, heads, normalizer, eps, keep_states):
    """mixer_op's forward as its fake or CPU kernel computes it, then the GEMM."""
    y, o, stats, states = mixer_op._forward_by_the_two_ops(
        projected, gate_bias, aug_balance, heads, normalizer, eps, True, keep_states
    )
    mixed = y.flatten(-2).transpose(0, 1)
    return mixed @ weight.t(), mixed, o, stats, states


mixer_out_forward.register_fake(_forward_by_the_ops)
mixer_out_forward.register_kernel("cpu")(_forward_by_the_ops)


@torch.library.custom_op("neox_metala::mixer_out_backward", mutates_args=(), device_types="cuda")
def mixer_out_backward(
    d_out: torch.Tensor,
    projected: torch.Tensor,
    mixed: torch.Tensor,
    o: torch.Tensor,
    stats: torch.Tensor,
    states: torch.Tensor,
    gate_bias: torch.Tensor | None,
    aug_balance: torch.Tensor | None,
    weight: torch.Tensor,
    heads: int,
    normalizer: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (d projected, d gate_bias, d aug_balance (empty where absent), d weight)."""
    return mixer_out_backward_triton(
        d_out, projected, mixed, o, stats, states if states.numel() else None, gate_bias, aug_balance, weight, heads,
        normalizer,
    )  # fmt: skip


def mixer_out_backward_triton(d_out, projected, mixed, o, stats, states, gate_bias, aug_balance, weight, heads,
                              normalizer):  # fmt: skip
    """mixer_out_backward's kernels; `states` None: recomputed."""
    from .out_grad_op import out_grad_triton

    d_weight = d_out.flatten(0, 1).t() @ mixed.flatten(0, 1)
    q, x, v, g = mixer_op._parts(projected, heads)
    d_projected = torch.empty(projected.shape, dtype=projected.dtype, device=projected.device)
    dq, dx, dv, dg = mixer_op._parts(d_projected, heads)
    da = None if aug_balance is None else torch.empty(q.shape[:3], dtype=torch.float32, device=q.device)
    d_o, d_bias, d_aug = out_grad_triton(
        d_out, weight, o, q, x, v, g, gate_bias, aug_balance, stats, normalizer, True, (dv, dg), da
    )
    mixer_op._core_backward(q, x, v, normalizer, d_o, states, (dq, dx, dv), da, aug_balance)
    return d_projected, d_bias, d_aug, d_weight


@mixer_out_backward.register_fake
def _(d_out, projected, mixed, o, stats, states, gate_bias, aug_balance, weight, heads, normalizer):
    d_bias = gate_bias.new_empty(gate_bias.shape) if gate_bias is not None else o.new_empty(0)
    d_aug = aug_balance.new_empty(aug_balance.shape) if aug_balance is not None else o.new_empty(0)
    return projected.new_empty(projected.shape), d_bias, d_aug, weight.new_empty(weight.shape)


@mixer_out_backward.register_kernel("cpu")
def _(d_out, projected, mixed, o, stats, states, gate_bias, aug_balance, weight, heads, normalizer):
    dy = (d_out @ weight).unflatten(-1, (heads, -1)).transpose(0, 1)  # (B, T, H, V)
    d_projected, d_bias, d_aug = mixer_op.mixer_backward(
        dy, projected, o, stats, states, gate_bias, aug_balance, heads, normalizer
    )
    return d_projected, d_bias, d_aug, d_out.flatten(0, 1).t() @ mixed.flatten(0, 1)


def _setup_context(ctx, inputs, output):
    projected, gate_bias, aug_balance, weight, heads, normalizer, *_ = inputs
    _, mixed, o, stats, states = output
    ctx.mark_non_differentiable(mixed, o, stats, states)
    ctx.save_for_backward(projected, mixed, o, stats, states, gate_bias, aug_balance, weight)
    ctx.heads, ctx.normalizer = heads, normalizer


def _backward(ctx, d_out, _d_mixed, _d_o, _d_stats, _d_states):
    projected, mixed, o, stats, states, gate_bias, aug_balance, weight = ctx.saved_tensors
    d_projected, d_bias, d_aug, d_weight = mixer_out_backward(
        d_out.contiguous(), projected, mixed, o, stats, states, gate_bias, aug_balance, weight, ctx.heads,
        ctx.normalizer,
    )  # fmt: skip
    d_bias = d_bias if gate_bias is not None else None
    d_aug = d_aug if aug_balance is not None else None
    return d_projected, d_bias, d_aug, d_weight, None, None, None, None


mixer_out_forward.register_autograd(_backward, setup_context=_setup_context)


def metala_mixer_out(projected, gate_bias, aug_balance, weight, heads: int, normalizer: float, eps: float,
                     keep_states: bool = False) -> torch.Tensor:  # fmt: skip
    """This rank's out projection of the token mix, y W_outᵀ (T, B, hidden), differentiable in the projection
    [q | decay logits | v | gate] (B, T, 3W), gate_bias [W] or None, aug_balance [W/2] or None and weight = W_out
    (hidden, W); `supports` says which shapes the GPU takes.

    Example:
        >>> out = metala_mixer_out(projected, gate_bias, aug_balance, w_out, heads=8, normalizer=16.0, eps=1e-5)
    """
    return mixer_out_forward(projected, gate_bias, aug_balance, weight, heads, normalizer, eps, keep_states)[0]

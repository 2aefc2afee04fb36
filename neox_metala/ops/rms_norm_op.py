"""The blocks' RMSNorm as PyTorch custom ops with autograd: y = x / rms(x) · w, and the residual form
(h, y) = (x + residual, h / rms(h) · w) that the block's second norm uses. On CUDA they run as Triton kernels
(ops/rms_norm_kernels.py), on the CPU as the same math in PyTorch (fp32 for half inputs, one rounding per output).

Why: in a compiled block inductor fused the norms with their residual adds, but their backward kernels ran at ~2×
their byte floor and the scales' gradients took further reductions (docs/benchmarks.md, session 15's profile:
~13 ms of a 375 ms step for the 48 norms' backward). Here the backward is one kernel per norm that reads h, dy and
the residual's gradient once, writes dh once and the scale's gradient as per-tile sums (fp32, 1/BN of a row per
row), added up by one small sum. Only h is saved for the backward; 1/rms is formed again from it.

Shapes: x and residual (..., D), weight (D,) or None (no learned scale: simple_rmsnorm), outputs in x's dtype.
tests/ops/test_rms_norm_op.py checks the ops against autograd of the formula in fp64, tests/ops/test_rms_norm_triton.py
the kernels.
"""

from __future__ import annotations

import functools

import torch

from .triton_launch import launch

# elements per program tile (BN rows × BD channels): forward ~1.2× its byte floor at 4K on an H200 (bench/norm.py);
# the backward's tiles are larger, so that its per-tile partial sums of the scale's gradient add few bytes
FORWARD_TILE, BACKWARD_TILE = 4096, 8192
WIDEST = 16384  # rows wider than this (no model here has them) run the PyTorch code on CUDA too


@functools.cache
def _kernels():
    from . import rms_norm_kernels

    return rms_norm_kernels


def _blocks(width: int, tile: int) -> tuple[int, int, int]:
    """(rows per tile, channel block, warps) for rows of `width` channels."""
    block_d = 1 << (width - 1).bit_length()
    return max(1, tile // block_d), block_d, 8 if block_d * max(1, tile // block_d) >= 8192 else 4


def _on_triton(x: torch.Tensor) -> bool:
    return x.is_cuda and x.shape[-1] <= WIDEST


def _flat(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.reshape(-1, t.shape[-1]).contiguous()


def forward_triton(x, residual, weight, eps: float, blocks=None):
    """-> (h, y), both (rows, D) in x's dtype; h is x (no copy) without a residual. blocks: (rows per tile, channel
    block ≥ D, warps), by default _blocks(D, FORWARD_TILE) (bench/norm.py times others)."""
    x, residual = _flat(x), _flat(residual)
    rows, width = x.shape
    h = x if residual is None else torch.empty_like(x)
    y = torch.empty_like(x)
    block_n, block_d, warps = blocks or _blocks(width, FORWARD_TILE)
    launch(
        _kernels().rms_norm_forward_kernel, (-(-rows // block_n),), x, x if residual is None else residual, h, y,
        x if weight is None else weight, rows, width, eps, HAS_RESIDUAL=residual is not None,
        HAS_WEIGHT=weight is not None, BN=block_n, BD=block_d, num_warps=warps,
    )  # fmt: skip
    return h, y


def backward_triton(h, dy, dh_in, weight, eps: float, blocks=None):
    """-> (dh (rows, D) in h's dtype, dw (D,) in weight's dtype, or None without a weight). blocks: as
    forward_triton's, by default _blocks(D, BACKWARD_TILE)."""
    h, dy, dh_in = _flat(h), _flat(dy), _flat(dh_in)
    rows, width = h.shape
    block_n, block_d, warps = blocks or _blocks(width, BACKWARD_TILE)
    tiles = -(-rows // block_n)
    dh = torch.empty_like(h)
    partial = torch.empty(tiles if weight is not None else 1, width, device=h.device, dtype=torch.float32)
    launch(
        _kernels().rms_norm_backward_kernel, (tiles,), h, dy, h if dh_in is None else dh_in, dh,
        h if weight is None else weight, partial, rows, width, eps, HAS_DH_IN=dh_in is not None,
        HAS_WEIGHT=weight is not None, BN=block_n, BD=block_d, num_warps=warps,
    )  # fmt: skip
    return dh, None if weight is None else partial.sum(0).to(weight.dtype)


def _wide(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.promote_types(t.dtype, torch.float32))


def forward_torch(x, residual, weight, eps: float):
    """The kernels' math in PyTorch: -> (h, y) in x's dtype (h is x without a residual)."""
    h = x if residual is None else (_wide(x) + _wide(residual)).to(x.dtype)
    wide = _wide(h)
    y = wide * torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + eps)
    return h, (y if weight is None else y * _wide(weight)).to(x.dtype)


def backward_torch(h, dy, dh_in, weight, eps: float):
    wide, d_y = _wide(h), _wide(dy)
    r = torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + eps)
    normed = wide * r
    g = d_y if weight is None else d_y * _wide(weight)
    dh = r * (g - normed * (g * normed).mean(-1, keepdim=True))
    if dh_in is not None:
        dh = dh + _wide(dh_in)
    dw = None if weight is None else (d_y * normed).reshape(-1, h.shape[-1]).sum(0).to(weight.dtype)
    return dh.to(h.dtype), dw


def _forward(x, residual, weight, eps):
    return (forward_triton if _on_triton(x) else forward_torch)(x, residual, weight, eps)


# --- custom ops ------------------------------------------------------------------------------------------------
# A custom op may not return an input, so the plain norm (y) and the residual form (h, y) are two ops.


@torch.library.custom_op("neox_metala::rms_norm", mutates_args=())
def rms_norm_op(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    return _forward(x, None, weight, eps)[1].view(x.shape)


@rms_norm_op.register_fake
def _(x, weight, eps):
    return torch.empty_like(x)


@torch.library.custom_op("neox_metala::add_rms_norm", mutates_args=())
def add_rms_norm_op(
    x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor | None, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    h, y = _forward(x, residual, weight, eps)
    return h.view(x.shape), y.view(x.shape)


@add_rms_norm_op.register_fake
def _(x, residual, weight, eps):
    return torch.empty_like(x), torch.empty_like(x)


@torch.library.custom_op("neox_metala::rms_norm_backward", mutates_args=())
def rms_norm_backward(
    h: torch.Tensor, dy: torch.Tensor, dh_in: torch.Tensor | None, weight: torch.Tensor | None, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (dh (h's shape), dw (weight's shape; empty without a weight))."""
    dh, dw = (backward_triton if _on_triton(h) else backward_torch)(h, dy, dh_in, weight, eps)
    return dh.view(h.shape), h.new_empty(0) if dw is None else dw


@rms_norm_backward.register_fake
def _(h, dy, dh_in, weight, eps):
    return torch.empty_like(h), h.new_empty(0) if weight is None else torch.empty_like(weight)


def _save_input(ctx, inputs, output):
    x, weight, ctx.eps = inputs
    ctx.save_for_backward(x, weight)


def _norm_backward(ctx, dy):
    x, weight = ctx.saved_tensors
    dx, dw = rms_norm_backward(x, dy, None, weight, ctx.eps)
    return dx, None if weight is None else dw, None


def _save_sum(ctx, inputs, output):
    *_, weight, ctx.eps = inputs
    ctx.save_for_backward(output[0], weight)


def _add_norm_backward(ctx, d_h, dy):
    h, weight = ctx.saved_tensors
    if dy is None:  # y unused: the sum's gradient passes to both inputs
        return d_h, d_h, None, None
    dh, dw = rms_norm_backward(h, dy, d_h, weight, ctx.eps)
    return dh, dh, None if weight is None else dw, None


rms_norm_op.register_autograd(_norm_backward, setup_context=_save_input)
add_rms_norm_op.register_autograd(_add_norm_backward, setup_context=_save_sum)


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """x / rms(x) · weight over the last axis, differentiable; weight None: no scale.

    Example:
        >>> y = rms_norm(hidden, norm.scale, 1e-8)  # (2048, 8, 1024) bf16 -> same
    """
    _check(x, weight)
    return rms_norm_op(x, weight, eps)


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor | None, eps: float):
    """-> (h, y): h = x + residual (in x's dtype) and y = rms_norm(h, weight, eps), differentiable.

    Example:
        >>> hidden, normed = add_rms_norm(hidden, mixer_out, norm.scale, 1e-8)
    """
    _check(x, weight)
    if residual.shape != x.shape or residual.dtype != x.dtype:
        raise ValueError(
            f"add_rms_norm: residual {tuple(residual.shape)} {residual.dtype} must match x {tuple(x.shape)} {x.dtype}"
        )
    return add_rms_norm_op(x, residual, weight, eps)


def _check(x, weight) -> None:
    if weight is not None and weight.shape != x.shape[-1:]:
        raise ValueError(f"rms_norm: weight {tuple(weight.shape)} does not match the last axis of x {tuple(x.shape)}")

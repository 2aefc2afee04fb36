"""The causal depthwise short convolution with SiLU (from a zero state) as two PyTorch custom ops with autograd,
on Triton kernels (ops/short_conv_kernels.py): the default in compiled blocks, in place of `short_conv_shifted`
(config key metala_conv_kernel).

Why: inside a compiled block, inductor runs the shifted form as four kernels per layer and micro batch (forward,
its recomputation in backward, dx, the weight-gradient reduction; ~246 µs at B=8, T=2048, C=1024 bf16 on an
H200, where the bytes allow ~45 µs). Here: one forward kernel; in backward, one kernel that recomputes the
pre-activation from x, stores dpre = dy · SiLU'(pre) and per-span weight gradients, one kernel for dx from dpre at
W shifts, and one small kernel that sums the spans' partials (ops/partial_sums.py). The forward saves only x. Two
backward kernels, so that dpre is formed once per element (ops/short_conv_kernels.py says what one kernel cost).
As opaque ops with declared output shapes they stay inside one compiled graph (as ops/core_op.py's). The kernels
are launched through ops/triton_launch.py.

Layout: x and dy may be strided over batch and time (the layer's (seq, batch) → (batch, seq) transpose is a view);
their channels must be contiguous, else they are copied. y and dx are contiguous (B, T, C).
Packed documents are not supported: `short_conv_silu` refuses `document_starts`; ops/metala.py keeps the masked
shifted sum for them. The CPU kernels are the same math in PyTorch, so the CPU tests check the op, its autograd
and its registrations.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from .partial_sums import sum_partials
from .triton_launch import launch

# (tokens per block, channels per block, warps). The forward's: the fastest of bench/conv.py's sweep on an H200
# (2026-11-29, B8 T2048 C1024 bf16: 0.031 ms = 1.9x its byte floor, against 0.141 ms at (16, 128, 8)).
FORWARD_BLOCKS = (8, 128, 4)
# The backward's two kernels, from the same sweep: dx at the forward's blocks (0.026 ms = 1.6x its floor); dpre,
# which reduces its weight-gradient partials once per program, fastest at (8, 64, 2) walking 16 token blocks:
# 0.062 ms = 2.6x its floor (H200, 2026-11-29 session 9; 0.072 at (8, 128, 4), 0.082-0.117 at 16-32 tokens), where
# the form that reduced at every step and tap took 0.152 ms. Backward at these blocks: 0.088 ms (2.2x its floor).
# The dpre program walks STEPS blocks of tokens, so its weight-gradient partials stay small (B · T / (BT · STEPS) ×
# C × W fp32: 2 MB at B=8, T=2048, C=1024). sm90 builds (bench/conv_build.py, triton 3.6, bf16): 40, 128 and 40
# registers, no spills.
PRE_GRAD_BLOCKS = (8, 64, 2)
PRE_GRAD_STEPS = 16
# Software-pipeline stages of the dpre kernel's step loop (tl.range num_stages): above 1 the later steps' taps load
# as cp.async while this step computes (sm90 build, bf16: 22 cp.async at 2, 128 registers either way). On an H200
# (bench/conv.py, B8 T2048 C1024 bf16, 2026-11-30) 3 stages took 0.054 ms against 0.064 at 1 (2: 0.069); the GPU
# test of the pipelined loop (test_pipelined_step_loop_bf16, 2 and 3 stages) passed (2026-11-30, session 15).
PRE_GRAD_STAGES = 3
INPUT_GRAD_BLOCKS = (8, 128, 4)
_TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _channels_contiguous(t: torch.Tensor) -> torch.Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


@functools.cache
def _kernels():
    from . import short_conv_kernels

    return short_conv_kernels


def _check_triton_inputs(x: torch.Tensor, weight: torch.Tensor) -> None:
    if x.dtype not in _TRITON_DTYPES:
        raise ValueError(f"short_conv Triton kernels take x in fp32, bf16 or fp16, got {x.dtype}")
    if x.shape[1] == 0:
        raise ValueError(f"short_conv: x has no tokens, shape {tuple(x.shape)}")


def conv_forward_triton(x, weight, blocks=FORWARD_BLOCKS):
    """x (B, T, C), weight (C, W) -> y (B, T, C) contiguous, in x's dtype."""
    _check_triton_inputs(x, weight)
    x, weight = _channels_contiguous(x), weight.contiguous()
    batch, seq, channels = x.shape
    block_t, block_c, warps = blocks
    y = torch.empty(batch, seq, channels, dtype=x.dtype, device=x.device)
    grid = (_cdiv(seq, block_t), _cdiv(channels, block_c), batch)
    launch(
        _kernels().conv_forward_kernel, grid,
        x, weight, y, seq, channels, x.stride(0), x.stride(1), W=weight.shape[1], BT=block_t, BC=block_c,
        num_warps=warps,
    )  # fmt: skip
    return y


def conv_backward_triton(
    x, weight, d_out, pre_grad_blocks=PRE_GRAD_BLOCKS, steps=PRE_GRAD_STEPS, input_grad_blocks=INPUT_GRAD_BLOCKS,
    stages=PRE_GRAD_STAGES,
):  # fmt: skip
    """-> (dx (B, T, C) contiguous in x's dtype, dweight (C, W) in weight's dtype, summed in fp32)."""
    d_pre, dweight = conv_pre_grad_triton(x, weight, d_out, pre_grad_blocks, steps, stages)
    return conv_input_grad_triton(d_pre, weight, input_grad_blocks), dweight


def conv_pre_grad_triton(x, weight, d_out, blocks=PRE_GRAD_BLOCKS, steps=PRE_GRAD_STEPS, stages=PRE_GRAD_STAGES):
    """-> (dpre = dy · SiLU'(pre) (B, T, C) contiguous in x's dtype, dweight (C, W) in weight's dtype).

    dpre in x's dtype, not fp32: in bf16 it halves the bytes written here and read back for dx, which is rounded
    to bf16 anyway; the extra rounding takes dx's norm-relative error against fp64 from 1.7e-3 to 2.3e-3 (fp16:
    2.1e-4 to 2.9e-4; B2 T2048 C1024, W=4). dweight is summed from the fp32 dpre.
    """
    _check_triton_inputs(x, weight)
    x, weight, d_out = _channels_contiguous(x), weight.contiguous(), _channels_contiguous(d_out)
    batch, seq, channels = x.shape
    width = weight.shape[1]
    block_t, block_c, warps = blocks
    steps = max(1, min(steps, _cdiv(seq, block_t)))  # a short sequence needs no empty steps
    spans = _cdiv(seq, block_t * steps)
    d_pre = torch.empty(batch, seq, channels, dtype=x.dtype, device=x.device)
    partials = torch.empty(batch * spans, channels, width, dtype=torch.float32, device=x.device)
    launch(
        _kernels().conv_pre_grad_kernel, (spans, _cdiv(channels, block_c), batch),
        x, weight, d_out, d_pre, partials, seq, channels, x.stride(0), x.stride(1), d_out.stride(0), d_out.stride(1),
        W=width, BT=block_t, BC=block_c, STEPS=steps, STAGES=stages, num_warps=warps,
    )  # fmt: skip
    # the partials' column sums in weight's dtype in one launch (torch's sum and cast were two)
    (dweight,) = sum_partials(partials.view(batch * spans, channels * width), (weight.dtype,))
    return d_pre, dweight.view(weight.shape)


def conv_input_grad_triton(d_pre, weight, blocks=INPUT_GRAD_BLOCKS):
    """dpre (B, T, C) contiguous -> dx (B, T, C) contiguous, in dpre's dtype."""
    weight = weight.contiguous()
    batch, seq, channels = d_pre.shape
    block_t, block_c, warps = blocks
    dx = torch.empty_like(d_pre)
    grid = (_cdiv(seq, block_t), _cdiv(channels, block_c), batch)
    launch(
        _kernels().conv_input_grad_kernel, grid, d_pre, weight, dx, seq, channels, W=weight.shape[1], BT=block_t,
        BC=block_c, num_warps=warps,
    )  # fmt: skip
    return dx


def _cdiv(n: int, block: int) -> int:
    return -(-n // block)


# --- the same math in PyTorch: the ops' CPU kernels -----------------------------------------------------------


def _windows(x, width):
    """x (B, T, C) -> its W shifted copies in the compute dtype (fp32, or fp64 for fp64): tap j holds x[t-(W-1)+j]."""
    seq = x.shape[1]
    wide = x.to(torch.promote_types(x.dtype, torch.float32))
    padded = F.pad(wide, (0, 0, width - 1, 0))  # (B, W-1+T, C): zero history
    return [padded[:, j : j + seq] for j in range(width)]


def conv_forward_torch(x, weight):
    taps = _windows(x, weight.shape[1])
    wide = weight.to(taps[0].dtype)
    return F.silu(sum(tap * wide[:, j] for j, tap in enumerate(taps))).to(x.dtype)


def conv_backward_torch(x, weight, d_out):
    seq, width = x.shape[1], weight.shape[1]
    taps = _windows(x, width)
    wide = weight.to(taps[0].dtype)
    pre = sum(tap * wide[:, j] for j, tap in enumerate(taps))  # (B, T, C)
    gate = torch.sigmoid(pre)
    d_pre = d_out.to(pre.dtype) * gate * (1 + pre * (1 - gate))
    later = F.pad(d_pre, (0, 0, 0, width - 1))  # (B, T+W-1, C): no gradient from beyond the sequence
    dx = sum(wide[:, j] * later[:, width - 1 - j : width - 1 - j + seq] for j in range(width))
    dweight = torch.stack([(d_pre * tap).sum((0, 1)) for tap in taps], dim=-1)  # (C, W)
    return dx.to(x.dtype), dweight.to(weight.dtype)


# --- custom ops ------------------------------------------------------------------------------------------------


@torch.library.custom_op("neox_metala::short_conv_forward", mutates_args=(), device_types="cuda")
def short_conv_forward(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x (B, T, C), weight (C, W) -> SiLU(causal depthwise conv of x) (B, T, C), contiguous, x's dtype."""
    return conv_forward_triton(x, weight)


@short_conv_forward.register_fake
def _(x, weight):
    return x.new_empty(x.shape)


@short_conv_forward.register_kernel("cpu")
def _(x, weight):
    return conv_forward_torch(x, weight).contiguous()


@torch.library.custom_op("neox_metala::short_conv_backward", mutates_args=(), device_types="cuda")
def short_conv_backward(
    x: torch.Tensor, weight: torch.Tensor, d_out: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (dx (B, T, C) contiguous in x's dtype, dweight (C, W) in weight's dtype)."""
    return conv_backward_triton(x, weight, d_out)


@short_conv_backward.register_fake
def _(x, weight, d_out):
    return x.new_empty(x.shape), weight.new_empty(weight.shape)


@short_conv_backward.register_kernel("cpu")
def _(x, weight, d_out):
    dx, dweight = conv_backward_torch(x, weight, d_out)
    return dx.contiguous(), dweight.contiguous()


def _setup_context(ctx, inputs, output):
    ctx.save_for_backward(*inputs)  # x and weight only: the backward recomputes the pre-activation


def _backward(ctx, d_out):
    x, weight = ctx.saved_tensors
    return short_conv_backward(x, weight, d_out)


short_conv_forward.register_autograd(_backward, setup_context=_setup_context)


def short_conv_silu(x: torch.Tensor, weight: torch.Tensor, document_starts=None) -> torch.Tensor:
    """SiLU(causal depthwise conv) from a zero state, differentiable: x [B, T, C], weight [C, W] -> y [B, T, C].

    Equals causal_conv.short_conv_shifted(x, weight). Packed documents (document_starts) are refused: use
    short_conv_shifted(x, weight, document_starts) for them.

    Example:
        >>> y = short_conv_silu(x, conv_weight)  # x (8, 2048, 1024) bf16, conv_weight (1024, 4)
    """
    if document_starts is not None:
        raise ValueError(
            "short_conv_silu does not support packed documents (document_starts); "
            "use causal_conv.short_conv_shifted(x, weight, document_starts)"
        )
    if x.dim() != 3 or weight.dim() != 2 or weight.shape[0] != x.shape[-1]:
        raise ValueError(
            f"short_conv_silu: x must be (batch, seq, channels) and weight (channels, width), got "
            f"{tuple(x.shape)} and {tuple(weight.shape)}"
        )
    return short_conv_forward(x, weight)

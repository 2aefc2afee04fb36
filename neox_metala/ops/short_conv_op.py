"""The causal depthwise short convolution with SiLU (from a zero state) as two PyTorch custom ops with autograd,
on Triton kernels (ops/short_conv_kernels.py): the default in compiled blocks, in place of `short_conv_shifted`
(config key metala_conv_kernel).

Why: inside a compiled block, inductor runs the shifted form as four kernels per layer and micro batch (forward,
its recomputation in backward, dx, the weight-gradient reduction; ~246 µs at B=8, T=2048, C=1024 bf16 on an
H200, where the bytes allow ~45 µs). Here: one forward kernel; in backward, one kernel that recomputes the
pre-activation from x, forms dpre = dy · SiLU'(pre) in registers, dx from it and per-span weight gradients, and
one small kernel that sums the spans' partials (ops/partial_sums.py). The forward saves only x.
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

# Both kernels walk a program's span of STEPS blocks of BT tokens × BC channels of one batch row one token row at
# a time (ops/short_conv_kernels.py): (tokens per step, channels, warps), steps per program, and the step loop's
# software-pipeline stages (tl.range num_stages: above 1 later steps' rows load as cp.async while a step computes;
# the interpreter ignores it, so only the GPU tests run the pipelined loop).
# The forward: the backward's best blocks (bench/conv.py's other forward candidates not yet timed). In the block
# (bench/layer.py, B32 T2048 C2048 bf16, H200, 2026-11-30) 0.159-0.166 ms against the tiled forward it replaces
# (W shifted (8, 128) tiles per block, warps 4: x re-read W times) at 0.247-0.251; alone 0.215 ms, 1.7x its byte
# floor (x read, y written), its other blocks 0.216-1.08 ms. Neither kernel is timed at the 380M model's shape
# (B8 T2048 C1024: 512 programs of 2 warps at these blocks).
FORWARD_BLOCKS = (4, 256, 2)
FORWARD_STEPS = 32
FORWARD_STAGES = 3
# The backward: one kernel that also forms its span's dw partials (B · T / (BT · STEPS) × C × W fp32, summed by
# ops/partial_sums.py). bench/conv.py's sweep on an H200 (2026-11-30, B32 T2048 C2048 bf16, the whole backward
# with the partials' sum; (BT, BC, warps) x steps, stages): (8,256,2)x16 s1 0.332 ms, s2 0.401, s3 0.300;
# (8,256,2)x8 s1 0.344; (4,256,2)x32 s1 0.295, s3 0.243 (1.3x its 3-tensor floor: x, dy, dx); (8,128,2)x16 s1
# 0.276, s3 0.328; (8,512,4)x16 s1 0.332, s3 0.308; (16,512,4)x8 s1 0.304. GPU tests of (4,256,2)x32 at 2 and 3
# stages passed. In the block (bench/layer.py, T=2048) the one kernel at its first default, (8,256,2)x16 s1, ran
# 0.323 ms against the two kernels' 0.294 + 0.191 (dpre + dw partials, then dx: dpre's round trip through HBM).
# BC is 32 · warps · 4, so each thread loads 4 channels of a row at once (8 bytes in bf16); 8 per thread spilled.
BACKWARD_BLOCKS = (4, 256, 2)
BACKWARD_STEPS = 32
BACKWARD_STAGES = 3
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


def conv_forward_triton(x, weight, blocks=FORWARD_BLOCKS, steps=FORWARD_STEPS, stages=FORWARD_STAGES):
    """x (B, T, C), weight (C, W) -> y (B, T, C) contiguous, in x's dtype."""
    _check_triton_inputs(x, weight)
    x, weight = _channels_contiguous(x), weight.contiguous()
    batch, seq, channels = x.shape
    block_t, block_c, warps = blocks
    steps = _span_steps(seq, block_t, steps)
    y = torch.empty(batch, seq, channels, dtype=x.dtype, device=x.device)
    grid = (_cdiv(seq, block_t * steps), _cdiv(channels, block_c), batch)
    launch(
        _kernels().conv_forward_kernel, grid,
        x, weight, y, seq, channels, x.stride(0), x.stride(1), W=weight.shape[1], BT=block_t, BC=block_c,
        STEPS=steps, STAGES=stages, num_warps=warps,
    )  # fmt: skip
    return y


def conv_backward_triton(x, weight, d_out, blocks=BACKWARD_BLOCKS, steps=BACKWARD_STEPS, stages=BACKWARD_STAGES):
    """-> (dx (B, T, C) contiguous in x's dtype, dweight (C, W) in weight's dtype, summed in fp32).

    dx from the fp32 dpre, rounded once to x's dtype (the two kernels before rounded dpre to x's dtype on its way
    through HBM: in bf16 dx's norm-relative error against fp64 was 2.3e-3 with it, 1.7e-3 without; B2 T2048 C1024).
    """
    _check_triton_inputs(x, weight)
    x, weight, d_out = _channels_contiguous(x), weight.contiguous(), _channels_contiguous(d_out)
    batch, seq, channels = x.shape
    width = weight.shape[1]
    block_t, block_c, warps = blocks
    steps = _span_steps(seq, block_t, steps)
    spans = _cdiv(seq, block_t * steps)
    dx = torch.empty(batch, seq, channels, dtype=x.dtype, device=x.device)
    partials = torch.empty(batch * spans, channels, width, dtype=torch.float32, device=x.device)
    launch(
        _kernels().conv_backward_kernel, (spans, _cdiv(channels, block_c), batch),
        x, weight, d_out, dx, partials, seq, channels, x.stride(0), x.stride(1), d_out.stride(0), d_out.stride(1),
        W=width, BT=block_t, BC=block_c, STEPS=steps, STAGES=stages, num_warps=warps,
    )  # fmt: skip
    # the partials' column sums in weight's dtype in one launch (torch's sum and cast were two)
    (dweight,) = sum_partials(partials.view(batch * spans, channels * width), (weight.dtype,))
    return dx, dweight.view(weight.shape)


def _cdiv(n: int, block: int) -> int:
    return -(-n // block)


def _span_steps(seq: int, block_t: int, steps: int) -> int:
    """Steps per program: a short sequence needs no empty steps (each would still be a build and masked loads)."""
    return max(1, min(steps, _cdiv(seq, block_t)))


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

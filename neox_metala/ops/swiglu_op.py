"""The SwiGLU MLP's activation and down projection, out = (SiLU(gate) ⊙ up) Wᵀ for h = [gate | up], as one PyTorch
custom op with autograd whose backward forms y = SiLU(gate) ⊙ up again instead of keeping it from the forward; on
CUDA its activation runs as Triton kernels (ops/swiglu_kernels.py), on the CPU as the same math in PyTorch.

Why: a GEMM's autograd keeps its input, so SiLU(gate) ⊙ up feeding the down projection would be stored for the
backward next to h (2 bytes × the MLP width per token and layer: 2.2 GB at the 380M model's micro batch of 8 × 2048
tokens). In a compiled block inductor avoids that by recomputing the product in its backward kernel, but that
kernel ran at ~2.3 TB/s on an H200, 19.2 ms of the 376 ms step (docs/benchmarks.md, session 13's profile). Here the
backward is one kernel at its byte floor (read h and dy, write dh and y) between the two GEMMs, and only h is saved.
Optionally the block's residual is the GEMM's C (beta = 1, read in its epilogue): out = residual + y Wᵀ with one
rounding, instead of a separate add kernel over the block's output (3.6 ms of a 372 ms step, session 16's profile).

Shapes: h (..., 2W) with each row's channels contiguous (rows may be strided: a view of a larger tensor), weight
(hidden, W) (the down projection's this rank's shard under TP; the caller reduces across ranks), out (..., hidden)
in h's dtype. The math is the spec's MLP (spec §3.1); tests/ops/test_swiglu_op.py checks the op against autograd of
F.silu(gate) * up in fp64, tests/ops/test_swiglu_triton.py the kernels.
"""

from __future__ import annotations

import functools

import torch

from .triton_launch import launch

# (rows, channels, warps) per program: the fastest of bench/swiglu.py's 10 candidates on an H200 (bf16, 16384 rows,
# W 2816, 2026-11-30), forward 1.10x and backward 1.08x their byte floor; all but two were within 3% of it.
FORWARD_BLOCKS = (2, 1024, 4)
BACKWARD_BLOCKS = (2, 1024, 4)


@functools.cache
def _kernels():
    from . import swiglu_kernels

    return swiglu_kernels


def _rows(t: torch.Tensor) -> torch.Tensor:
    """t as (rows, channels), each row's channels contiguous (a view where the layout allows, else a copy)."""
    rows = t.reshape(-1, t.shape[-1])
    return rows if rows.stride(-1) == 1 else rows.contiguous()


def _grid(rows: int, width: int, blocks) -> tuple[int, int]:
    block_n, block_w, _ = blocks
    return -(-rows // block_n), -(-width // block_w)


def swiglu_forward_triton(h: torch.Tensor, blocks=FORWARD_BLOCKS) -> torch.Tensor:
    """h (..., 2W) -> y = SiLU(gate) ⊙ up (..., W), contiguous, in h's dtype."""
    rows = _rows(h)
    width = rows.shape[1] // 2
    y = h.new_empty(rows.shape[0], width)
    launch(
        _kernels().swiglu_forward_kernel, _grid(rows.shape[0], width, blocks), rows, y, rows.shape[0], width,
        rows.stride(0), y.stride(0), BN=blocks[0], BW=blocks[1], num_warps=blocks[2],
    )  # fmt: skip
    return y.view(*h.shape[:-1], width)


def swiglu_backward_triton(h: torch.Tensor, dy: torch.Tensor, blocks=BACKWARD_BLOCKS):
    """h (..., 2W), dy (..., W) -> (dh (..., 2W), y (..., W)), contiguous, in h's dtype."""
    rows, d_rows = _rows(h), _rows(dy)
    width = rows.shape[1] // 2
    dh, y = torch.empty_like(rows), h.new_empty(rows.shape[0], width)
    launch(
        _kernels().swiglu_backward_kernel, _grid(rows.shape[0], width, blocks), rows, d_rows, dh, y, rows.shape[0],
        width, rows.stride(0), d_rows.stride(0), dh.stride(0), y.stride(0), BN=blocks[0], BW=blocks[1],
        num_warps=blocks[2],
    )  # fmt: skip
    return dh.view(h.shape), y.view(dy.shape)


def swiglu_torch(h: torch.Tensor) -> torch.Tensor:
    """The forward in PyTorch (fp32 math for half inputs, one rounding, as the kernel)."""
    gate, up = _wide(h).chunk(2, dim=-1)
    return (torch.nn.functional.silu(gate) * up).to(h.dtype)


def swiglu_backward_torch(h: torch.Tensor, dy: torch.Tensor):
    gate, up = _wide(h).chunk(2, dim=-1)
    d_y, s = _wide(dy), torch.sigmoid(gate)
    silu = gate * s
    dh = torch.cat([d_y * up * s * (1 + gate * (1 - s)), d_y * silu], dim=-1)
    return dh.to(h.dtype), (silu * up).to(h.dtype)


def _wide(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.promote_types(t.dtype, torch.float32))


def _gemm(y: torch.Tensor, weight: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
    if residual is None:
        return torch.matmul(y, weight.t())
    # the residual as the GEMM's C (beta = 1): added to the fp32 product before its one rounding, in the GEMM's
    # epilogue instead of a separate add over the block's output
    rows = y.reshape(-1, y.shape[-1])
    return torch.addmm(residual.reshape(-1, residual.shape[-1]), rows, weight.t()).view(residual.shape)


def _weight_grad(d_out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return d_out.reshape(-1, d_out.shape[-1]).t().matmul(y.reshape(-1, y.shape[-1]))


# --- custom ops ------------------------------------------------------------------------------------------------


@torch.library.custom_op("neox_metala::swiglu_linear", mutates_args=(), device_types="cuda")
def swiglu_linear_op(h: torch.Tensor, weight: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
    """-> residual + (SiLU(gate) ⊙ up) weightᵀ (without a residual: the product), (..., hidden) in h's dtype."""
    return _gemm(swiglu_forward_triton(h), weight, residual)


@swiglu_linear_op.register_fake
def _(h, weight, residual):
    return h.new_empty(*h.shape[:-1], weight.shape[0])


@swiglu_linear_op.register_kernel("cpu")
def _(h, weight, residual):
    return _gemm(swiglu_torch(h), weight, residual)


@torch.library.custom_op("neox_metala::swiglu_linear_backward", mutates_args=(), device_types="cuda")
def swiglu_linear_backward(
    d_out: torch.Tensor, h: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (dh (..., 2W), d weight (hidden, W)), in h's and weight's dtypes."""
    dh, y = swiglu_backward_triton(h, torch.matmul(d_out, weight))
    return dh, _weight_grad(d_out, y)


@swiglu_linear_backward.register_fake
def _(d_out, h, weight):
    return h.new_empty(h.shape), weight.new_empty(weight.shape)


@swiglu_linear_backward.register_kernel("cpu")
def _(d_out, h, weight):
    dh, y = swiglu_backward_torch(h, torch.matmul(d_out, weight))
    return dh, _weight_grad(d_out, y)


def _setup_context(ctx, inputs, output):
    h, weight, residual = inputs
    ctx.save_for_backward(h, weight)
    ctx.has_residual = residual is not None


def _backward(ctx, d_out):
    h, weight = ctx.saved_tensors
    return *swiglu_linear_backward(d_out, h, weight), d_out if ctx.has_residual else None


swiglu_linear_op.register_autograd(_backward, setup_context=_setup_context)


def swiglu_linear(h: torch.Tensor, weight: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
    """out = (SiLU(gate) ⊙ up) weightᵀ for h = [gate | up] (..., 2W) and weight (hidden, W), differentiable, without
    storing SiLU(gate) ⊙ up for the backward; plus `residual` (..., hidden), added by the GEMM, when given.

    Example:
        >>> out = swiglu_linear(gate_and_up, w2.weight)  # (2048, 8, 5632) bf16, (1024, 2816) -> (2048, 8, 1024)
    """
    if h.shape[-1] != 2 * weight.shape[-1] or weight.dim() != 2:
        raise ValueError(
            f"swiglu_linear: h must be (..., 2W) = [gate | up] and weight (hidden, W); got h {tuple(h.shape)}, "
            f"weight {tuple(weight.shape)}"
        )
    if h.dtype != weight.dtype:
        raise ValueError(f"swiglu_linear: h is {h.dtype} but weight is {weight.dtype}; cast one to the other")
    if residual is not None and (residual.shape != (*h.shape[:-1], weight.shape[0]) or residual.dtype != h.dtype):
        raise ValueError(
            f"swiglu_linear: residual {tuple(residual.shape)} {residual.dtype} must be the output's shape "
            f"{(*h.shape[:-1], weight.shape[0])} and h's dtype {h.dtype}"
        )
    return swiglu_linear_op(h, weight, residual)

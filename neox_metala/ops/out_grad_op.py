"""The out projection's input gradient with MetaLA's epilogue backward fused into the GEMM (ops/out_grad_kernels.py):
from d out (the layer's output gradient) and W_out straight to the epilogue's gradients, in place of cuBLAS's dy =
d out · W_out followed by ops/epilogue_op.py's backward kernel reading dy back.

`out_grad_triton` returns what `epilogue_op.epilogue_backward_triton(..., grads=..., da=...)` returns for that dy
(do, and d gate_bias, d aug_balance summed from per-tile partials), writing dv and dg into the given views and da
into the given (B, T, H) buffer: the epilogue's own math (`epilogue_kernels._row_grads`), on the GEMM's fp32 tile
instead of dy rounded to bf16.
"""

from __future__ import annotations

import functools

import torch

from .partial_sums import sum_partials
from .triton_launch import launch

# (tokens per program, the GEMM's step over the hidden size, token blocks per group, pipeline stages, warps,
# pieces of rows the epilogue takes in turn, warp specialization[, registers per thread: Triton's maxnreg])
CONFIG = (128, 64, 8, 4, 8, 2, False)


@functools.cache
def _kernels():
    from . import out_grad_kernels

    return out_grad_kernels


def _scratch(size: int, alignment: int, stream):
    return torch.empty(size, dtype=torch.int8, device="cuda")


def _set_allocator() -> None:
    """Tensor descriptors made in a kernel need scratch memory from Triton's allocator, a context variable: set at
    every launch, since autograd runs the backward in a thread of its own, whose context starts without it."""
    import triton

    triton.set_allocator(_scratch)


def _cdiv(n: int, block: int) -> int:
    return -(-n // block)


def out_grad_triton(
    d_out, weight, o, q, x, v, g, gate_bias, aug_balance, stats, normalizer, seq_first, grads, da=None, config=CONFIG,
    dy=None,
):  # fmt: skip
    """-> (do (B, T, H, V) like o, d gate_bias, d aug_balance (empty where absent)). d_out: (T, B, hidden) if
    seq_first else (B, T, hidden); weight: W_out (hidden, H·V); o, q, x, v, g (B, T, H, ·) with each token's channels
    contiguous; stats as the epilogue's forward stored them; grads: (dv, dg) views sharing strides; da: (B, T, H)
    fp32 with aug_balance. dy given (a (M, H·V) tensor): the GEMM alone into it, no epilogue (bench/out_grad.py)."""
    block_m, block_h, group_m, stages, warps, split, ws, *register_cap = config
    batch, seq, heads, head_v_dim = o.shape
    head_k_dim = q.shape[-1]
    hidden = d_out.shape[-1]
    aug, bias = aug_balance is not None, gate_bias is not None
    if weight.shape != (hidden, heads * head_v_dim):
        raise ValueError(
            f"out_grad: W_out must be (hidden, H·V) = ({hidden}, {heads * head_v_dim}), got {weight.shape}"
        )
    if aug and (da is None or da.shape != o.shape[:3] or da.dtype != torch.float32 or not da.is_contiguous()):
        raise ValueError("out_grad: with aug_balance, da must be a contiguous (B, T, H) fp32 tensor")
    # tensor descriptors: contiguous rows (16-byte multiples: mixer_out_op.supports) from a 16-byte aligned base
    d_out, weight = (t.contiguous() if t.data_ptr() % 16 == 0 else t.clone() for t in (d_out, weight))
    dv, dg = grads
    d_o = torch.empty_like(o)
    tokens = batch * seq
    blocks_m = _cdiv(tokens, block_m)
    aug_width = heads * head_k_dim if aug else 0
    partial = o.new_empty(blocks_m, aug_width + heads * head_v_dim, dtype=torch.float32)
    _set_allocator()
    launch(
        _kernels().out_grad_kernel, (blocks_m * heads,),
        d_out, weight, o if dy is None else dy, o, q, x, v, g, gate_bias if bias else o, stats, d_o, dv, dg,
        da if aug else o, partial,
        tokens, batch, seq, stats[0].numel(), o.stride(0), o.stride(1), q.stride(0), q.stride(1), x.stride(0),
        x.stride(1), v.stride(0), v.stride(1), g.stride(0), g.stride(1), d_o.stride(0), d_o.stride(1), dv.stride(0),
        dv.stride(1), partial.stride(0), float(normalizer),
        H=heads, K=head_k_dim, V=head_v_dim, HIDDEN=hidden, BM=block_m, BH=block_h,
        BK=1 << (head_k_dim - 1).bit_length(), GROUP_M=group_m, STAGES=stages, AUG=aug, BIAS=bias,
        SEQ_FIRST=seq_first, PRECISION="ieee" if d_out.dtype == torch.float32 else "tf32", EPILOGUE=dy is None,
        SPLIT=split, WS=ws, num_warps=warps, **({"maxnreg": register_cap[0]} if register_cap else {}),
    )  # fmt: skip
    d_aug = d_bias = o.new_empty(0)
    if dy is None and (bias or aug):
        dtypes = (aug_balance.dtype if aug else torch.float32, gate_bias.dtype if bias else torch.float32)
        sums = sum_partials(partial, dtypes, splits=(aug_width, partial.shape[1] - aug_width))
        d_aug = sums[0].view(aug_balance.shape) if aug else d_aug
        d_bias = sums[1].view(gate_bias.shape) if bias else d_bias
    return d_o, d_bias, d_aug

"""Sums of per-program partial sums as one Triton kernel: a backward kernel that reduces a parameter gradient over
its tokens writes one fp32 row of partial sums per program; this sums the rows of each column and writes the
parameter gradients directly in their dtypes.

Why: the plain form, `partial.sum(0).to(dtype)`, is two launches (torch's reduce kernel, ~7.5 µs on an H200, then a
cast), once per layer and micro batch for each op that uses it (ops/short_conv_op.py's weight gradient; the
epilogue's d aug_balance and d gate_bias); here it is one launch of a kernel that reads the partials once.

The kernel is in ops/partial_sums_kernels.py.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import torch

from .triton_launch import launch

_TRITON = importlib.util.find_spec("triton") is not None  # CPU environments without it take the PyTorch path

# (rows, columns) per step of a program's loop, and warps. A program owns BLOCK_COLUMNS columns and walks all rows.
# On an H200 (session 17's profile, 2 x 8192 tokens per micro batch) 32 x 128 took ~7 µs per launch, as torch's
# reduce kernel did: 128 rows of the epilogue's 1,536 and the conv's 4,096 columns were 12-32 programs walking four
# row blocks each. 64 x 32: 48-128 programs, two row blocks each (16 values per thread at 4 warps).
BLOCK_ROWS = 64
BLOCK_COLUMNS = 32
WARPS = 4
_KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@functools.cache
def _kernel():
    from .partial_sums_kernels import sum_partials_kernel

    return sum_partials_kernel


def applies(partial: torch.Tensor, dtypes) -> bool:
    """Whether the kernel runs: triton installed, CUDA tensors (or the Triton interpreter, in tests), fp32 partials
    with at least one element, outputs in fp32, bf16 or fp16."""
    runs = partial.is_cuda or os.environ.get("TRITON_INTERPRET") == "1"
    return (
        _TRITON
        and runs
        and partial.dtype == torch.float32
        and partial.numel() > 0
        and all(dtype in _KERNEL_DTYPES for dtype in dtypes)
    )


def sum_partials(partial: torch.Tensor, dtypes, splits=None) -> tuple[torch.Tensor, ...]:
    """Column sums of per-program partial sums, split into one or two outputs: partial [R, C] (fp32, each row's
    columns contiguous; rows may be strided) -> one fresh 1-D tensor per split, out[i] = Σ_r partial[r, columns of
    split i], summed in fp32 and rounded once to dtypes[i].

    splits: the widths of the consecutive column ranges, summing to C (a width may be 0: an empty output); None is
    one output of all C columns. dtypes: one per split. The outputs never alias each other or `partial` (custom ops
    must not return aliases).

    On CUDA (and under TRITON_INTERPRET=1) one Triton launch; the rows are summed in a fixed order (blocks of
    BLOCK_ROWS rows in turn, then a tree within the block), so the result does not depend on scheduling but differs
    from torch's `partial.sum(0)` by fp32 summation order (its tree reduction), well within the fp32 sum's error
    bound. Elsewhere (CPU, no triton, other dtypes) `partial.sum(0)` then `.to(dtype)` per split.

    Example:
        >>> (d_weight,) = sum_partials(partials.view(rows, -1), (weight.dtype,))  # (128, 4096) -> (4096,)
        >>> d_aug, d_bias = sum_partials(partial, (torch.float32, torch.bfloat16), splits=(512, 1024))
    """
    splits = (partial.shape[-1],) if splits is None else tuple(splits)
    dtypes = tuple(dtypes)
    if partial.dim() != 2 or len(splits) != len(dtypes) or len(splits) not in (1, 2):
        raise ValueError(
            f"sum_partials: partial must be (rows, columns) and splits one or two widths with a dtype each; got "
            f"partial {tuple(partial.shape)}, splits {splits}, dtypes {dtypes}"
        )
    if sum(splits) != partial.shape[1] or min(splits) < 0:
        raise ValueError(f"sum_partials: splits {splits} must be widths ≥ 0 summing to the {partial.shape[1]} columns")
    if not applies(partial, dtypes):
        return sum_partials_torch(partial, dtypes, splits)
    if partial.stride(1) != 1:
        partial = partial.contiguous()
    rows, columns = partial.shape
    outputs = tuple(torch.empty(width, dtype=dtype, device=partial.device) for width, dtype in zip(splits, dtypes))
    # an empty output is never written (its mask is all false): the kernel gets the other one's pointer in its place
    written = [t for t in outputs if t.numel()]
    first, second = written[0], written[-1]
    launch(
        _kernel(), (-(-columns // BLOCK_COLUMNS),),
        partial, first, second, rows, columns, splits[0], partial.stride(0), BR=BLOCK_ROWS, BC=BLOCK_COLUMNS,
        num_warps=WARPS,
    )  # fmt: skip
    return outputs


def sum_partials_torch(partial: torch.Tensor, dtypes, splits) -> tuple[torch.Tensor, ...]:
    """The same in PyTorch: partial.sum(0), then each split's columns cast to its dtype (a copy, also where the dtype
    is the sum's: slices of one sum would alias)."""
    sums = partial.sum(0)
    starts = [sum(splits[:i]) for i in range(len(splits))]
    return tuple(
        sums[start : start + width].to(dtype, copy=True) for start, width, dtype in zip(starts, splits, dtypes)
    )

"""A micro batch's bf16 gradients added into (or written over) the optimizer's fp32 gradient buffers in one GPU
kernel.

Why a kernel of our own: `torch._foreach_add_` of bf16 tensors into fp32 ones leaves the multi-tensor fast path
(mixed dtypes) and runs one non-vectorised kernel per parameter: for the 380M model on an H200, 904 launches and
13.8 ms per 4-micro-batch step for ~3 ms worth of bytes (docs/benchmarks.md). Here one launch reads each bf16
gradient once and updates its fp32 buffer in place, through a table of the tensors' addresses; the values are
those of the foreach add (bf16 -> fp32 is exact and the add is one fp32 add). Elsewhere (CPU, no triton, other
dtypes, strided tensors) the foreach add runs.

Why a write mode (overwrite=True): the first micro batch after the optimizer's step used to add into buffers that
DeepSpeed had just zero-filled (0.62 ms per step for the 380M model), reading those zeros back (~0.4 ms), both at
T=8192 on an H200 (2026-11-30 profile). It now writes 0.0 + gradient without reading the buffer, and the fill is
skipped (engine.accumulate_in_one_call). The values are the old ones bit for bit: 0.0 + x is x, except that a
-0.0 gradient element becomes +0.0, as the add into zeros made it.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os

import torch

BLOCK = 4096  # elements per program: 40 KB of traffic, enough to hide the table lookups
_TRITON = importlib.util.find_spec("triton") is not None
_logger = logging.getLogger(__name__)
_broken: list[str] = []  # why the kernel could not be built or launched here, once known


def add_into_fp32(hp_grads: list[torch.Tensor], lp_grads: list[torch.Tensor], overwrite: bool = False) -> None:
    """hp_grads[i] += lp_grads[i] for fp32 hp_grads and same-shaped bf16 lp_grads. With `overwrite`,
    hp_grads[i] = 0.0 + lp_grads[i] whatever hp_grads held (NaN included): the values of a zero-fill then the add,
    which the kernel writes without reading hp_grads."""
    if not hp_grads:
        return
    if not _broken and _fits_kernel(hp_grads, lp_grads):
        try:
            _kernel_add(hp_grads, lp_grads, add=not overwrite)
            return
        except Exception as error:  # raised before the launch (a Triton that cannot build it): nothing was added
            _broken.append(f"{type(error).__name__}: {error}")
            _logger.warning("gradient add: the one-launch kernel failed (%s); using torch's foreach add", error)
    if overwrite:  # off the fast path: the old zero-then-add, whose values the kernel's write mode reproduces
        torch._foreach_zero_(hp_grads)
    torch._foreach_add_(hp_grads, lp_grads)


def _fits_kernel(hp_grads, lp_grads) -> bool:
    first = hp_grads[0]
    if not _TRITON or not (first.is_cuda or _interpreted()):
        return False
    return all(
        h.dtype == torch.float32
        and g.dtype == torch.bfloat16
        and h.device == first.device
        and g.device == first.device
        and h.numel() == g.numel()
        and h.is_contiguous()
        and g.is_contiguous()
        for h, g in zip(hp_grads, lp_grads)
    )


def _interpreted() -> bool:  # the Triton interpreter (TRITON_INTERPRET=1) runs the kernel on CPU tensors: tests
    return os.environ.get("TRITON_INTERPRET") == "1"


def _kernel_add(hp_grads, lp_grads, add: bool) -> None:
    device = hp_grads[0].device
    tiles, starts, numels, destinations = _fixed_tables(
        tuple(h.numel() for h in hp_grads), tuple(h.data_ptr() for h in hp_grads), str(device)
    )
    sources = _on(device, [g.data_ptr() for g in lp_grads])  # new gradient tensors at every micro batch
    _kernel()[(tiles.numel(),)](destinations, sources, tiles, starts, numels, BLOCK=BLOCK, ADD=add, num_warps=8)


def _on(device, values) -> torch.Tensor:
    table = torch.tensor(list(values), dtype=torch.int64)
    if table.device != torch.device(device) and torch.device(device).type == "cuda":
        # pinned through the caching host allocator, which keeps the buffer until the copy has run
        return table.pin_memory().to(device, non_blocking=True)
    return table.to(device)


@functools.lru_cache(maxsize=8)
def _fixed_tables(numels: tuple[int, ...], destinations: tuple[int, ...], device: str) -> tuple[torch.Tensor, ...]:
    """For every program: which tensor it adds and where in it its block starts; and every tensor's size and fp32
    buffer address. The optimizer's buffers do not move during a run, so these are built once."""
    counts = torch.tensor([-(-n // BLOCK) for n in numels])
    tensor_of_tile = torch.repeat_interleave(torch.arange(len(numels)), counts)
    first_tile = torch.cumsum(counts, 0) - counts
    start_of_tile = (torch.arange(int(counts.sum())) - torch.repeat_interleave(first_tile, counts)) * BLOCK
    return tensor_of_tile.to(device), start_of_tile.to(device), _on(device, numels), _on(device, destinations)


@functools.cache
def _kernel():
    import triton
    import triton.language as tl

    @triton.jit
    def add_bf16_into_fp32(destinations, sources, tiles, starts, numels, BLOCK: tl.constexpr, ADD: tl.constexpr):
        tile = tl.program_id(0)
        index = tl.load(tiles + tile)
        offsets = tl.load(starts + tile) + tl.arange(0, BLOCK)
        inside = offsets < tl.load(numels + index)
        destination = tl.load(destinations + index).to(tl.pointer_type(tl.float32))
        source = tl.load(sources + index).to(tl.pointer_type(tl.bfloat16))
        added = tl.load(source + offsets, mask=inside).to(tl.float32)
        if ADD:
            base = tl.load(destination + offsets, mask=inside)
        else:  # the zeros the buffer stands for, unread: 0.0 + x turns a -0.0 into +0.0 as the add into zeros did
            base = 0.0
        tl.store(destination + offsets, base + added, mask=inside)

    return add_bf16_into_fp32

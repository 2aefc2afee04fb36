"""Launches of MetaLA's core's chained forms (ops/metala_core_triton.py's CHAINED_FORWARD and CHAINED_BACKWARD): the
forward's states and outputs, or the backward's state gradients and dv, by one launch per direction whose programs,
one per chunk and chain, take the state from the program of the chunk before through the L2
(ops/metala_core_chained_kernels.py, metala_core_chained_grad_kernels.py). A program per chain walking its chunks,
the state in registers, was no faster (docs/gpu-logs/sequential-forward-session50.py, docs/benchmarks.md).

Imports triton on first use, as ops/metala_core_triton.py.
"""

from __future__ import annotations

import torch

from .metala_core_inputs import block, scan_buffers
from .triton_launch import launch

CARRIED_BYTES = 16 * 2**20
"""The chained forward takes its chains in groups whose carried fp32 states (two slots of K·V per batch·head) add up
to at most this much, so that they stay in the L2 (50 MiB on an H100 or H200) while q, v and the outputs stream past
(metala_core_chained_kernels._chunk_and_chain). H200, B32 T2048 H16 K64 V128, the core as the block calls it
(bench/core_ncu.py --augment, session 51): the launch over 512 chains (32 MiB carried) 673 µs in one group, 602 in
groups of 256 batch·heads (16 MiB), 690 of 128, 657 of 384. Read at every launch ("NAME=VALUE" in a benchmark)."""

CARRIED_GRAD_BYTES = 8 * 2**20
"""CARRIED_BYTES of the chained backward, which streams more past its carried states (d out, q, the logits, dv and
its state gradients): the same call's launches over a backward slice's 256 chains 388-390 µs in one group, 370-371 in
groups of 128 batch·heads (8 MiB)."""


def _kernels():
    """metala_core_triton's kernel table, looked up at each launch: the one table that tests and benchmarks replace
    to run other configurations (tests/triton_runs.force_config, bench/core_configs.py)."""
    from . import metala_core_triton  # (which imports this module)

    return metala_core_triton._kernels()


def _group(sizes, carried_bytes) -> int:
    """Batch·heads per group of chains whose carried states take at most `carried_bytes`."""
    return max(1, int(carried_bytes) // (2 * sizes["K"] * sizes["V"] * 4))


def _chained_grid(sizes, batch_heads):
    """A chained kernel's (N · B·H · chains per head,), chunk-major."""
    return lambda meta: (sizes["NT"] * batch_heads * -(-sizes["V"] // (meta["BV"] * meta.get("V_STEPS", 1))),)


def _chain_buffers(q, sizes, batch_heads):
    """A chained launch's (B·H, 2, K, V) fp32 carried sums and its flags, zero: one per (chunk, chain) for every V
    block width the autotuner may pick (at least 16)."""
    carried = q.new_empty(batch_heads, 2, sizes["K"], sizes["V"], dtype=torch.float32)
    flags = torch.zeros(sizes["NT"] * batch_heads * -(-sizes["V"] // 16), dtype=torch.int32, device=q.device)
    return carried, flags


def chained(q, gate_logits, v, scale, normalizer, strides, sizes, batch_heads, out, augmentation):
    """(states, decays) by ops/metala_core_chained_kernels.py's kernel, which also writes the factorised chunks'
    outputs into `out` (`augmentation` as metala_core_fwd's)."""
    states, decays = scan_buffers(q, sizes, batch_heads)
    a, w = (decays, decays) if augmentation is None else augmentation  # placeholders without
    launch(
        _kernels()["chained"], _chained_grid(sizes, batch_heads),
        q, gate_logits, v, states, decays, out, w, a, *_chain_buffers(q, sizes, batch_heads), scale, **strides,
        normalizer=normalizer, **sizes, BH=batch_heads, group_bh=_group(sizes, CARRIED_BYTES), BK=block(sizes["K"]),
        BF16=q.dtype == torch.bfloat16, AUG=augmentation is not None,
    )  # fmt: skip
    return states, decays


def chained_grads(q, gate_logits, d_out, scale, normalizer, strides, sizes, batch_heads, dv_rows, accumulate):
    """(the state gradients, the chunks' decays) as metala_core_triton._state_grads', by
    ops/metala_core_chained_grad_kernels.py's kernel, which also writes the factorised chunks' dv into dv_rows (a
    tensor and its row stride; added to if accumulate)."""
    state_grads, decays = scan_buffers(q, sizes, batch_heads)
    args = (q, gate_logits, d_out, state_grads, decays, dv_rows[0])
    launch(
        _kernels()["chained_grads"], _chained_grid(sizes, batch_heads), *args, *_chain_buffers(q, sizes, batch_heads),
        scale, stride_q=strides["stride_q"], stride_g=strides["stride_g"], stride_dv=dv_rows[1], normalizer=normalizer,
        **sizes, BH=batch_heads, group_bh=_group(sizes, CARRIED_GRAD_BYTES), BK=block(sizes["K"]),
        BF16=q.dtype == torch.bfloat16, ACCUMULATE=accumulate,
    )  # fmt: skip
    return state_grads, decays

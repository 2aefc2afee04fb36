"""Tensor-parallel shards <-> full tensors: a checkpoint of any TP size read into one process
(training/checkpoint_files.py: export, generation, evaluation, tests against single-rank runs), and a full model
cut for any TP size (export/neox.py). A training checkpoint is not converted between layouts in place: export it
and import it at the new size (README, "After pretraining").

Fused projections (MetaLA's [q | decay logits | v | gate], SwiGLU's [w1 | w3], attention's [q | k | v]) hold on
each rank the rank's slice of every part; `fused_part_sizes` on the parameter gives the parts' full sizes.
"""

from __future__ import annotations

import torch


def merge_tp_shards(
    shards: list[torch.Tensor], partition_dim: int | None, fused_part_sizes: tuple[int, ...] | None = None
) -> torch.Tensor:
    """Rebuild the full tensor from every TP rank's shard (partition_dim None: replicated, take rank 0)."""
    if partition_dim is None:
        return shards[0]
    if not fused_part_sizes:
        return torch.cat(shards, dim=partition_dim)
    tp = len(shards)
    local_sizes = [size // tp for size in fused_part_sizes]
    per_rank_parts = [shard.split(local_sizes, dim=partition_dim) for shard in shards]
    return torch.cat(
        [torch.cat([parts[i] for parts in per_rank_parts], dim=partition_dim) for i in range(len(local_sizes))],
        dim=partition_dim,
    )


def tp_layout(param) -> tuple[int | None, tuple[int, ...] | None]:
    """(partition_dim or None if replicated, fused part sizes or None) of a model parameter."""
    if not getattr(param, "tensor_model_parallel", False):
        return None, None
    return param.partition_dim, getattr(param, "fused_part_sizes", None)


def split_tp_shard(
    full: torch.Tensor, tp: int, rank: int, partition_dim: int | None, fused_part_sizes: tuple[int, ...] | None = None
) -> torch.Tensor:
    """Rank `rank`'s shard of a full tensor: the inverse of `merge_tp_shards` (replicated: the whole tensor)."""
    if partition_dim is None:
        return full
    if not fused_part_sizes:
        return full.chunk(tp, dim=partition_dim)[rank]
    parts = full.split(list(fused_part_sizes), dim=partition_dim)
    return torch.cat([part.chunk(tp, dim=partition_dim)[rank] for part in parts], dim=partition_dim)

"""Initialisation that does not depend on the parallel layout.

Every parameter is drawn in full from a generator seeded by (seed, layer, name), then each rank keeps its
tensor-parallel shard. So the same seed gives the same full model for any TP size and any pipeline partition,
which is what lets a TP=2 or PP=2 run be compared with a single-rank run. Megatron's own GPU init draws a
separate stream per TP rank and cannot give that.
"""

from __future__ import annotations

import hashlib
import math

import torch

from .. import parallel


def init_std(method: str, base_std: float, num_layers: int, hidden_size: int) -> float:
    """Standard deviation of NeoX's normal-distribution init methods."""
    stds = {
        "normal": base_std,
        "scaled_normal": base_std / math.sqrt(2.0 * num_layers),
        "small_init": math.sqrt(2.0 / (5.0 * hidden_size)),  # Nguyen & Salazar 2019
        "wang_init": 2.0 / (num_layers * math.sqrt(hidden_size)),  # Wang 2021 (GPT-J)
    }
    if method not in stds:
        raise ValueError(f"unknown init method {method!r}; choose one of {', '.join(stds)}")
    return stds[method]


def stds(settings) -> tuple[float, float]:
    """(init_method std, output_layer_init_method std) of a block's settings."""
    return (
        init_std(settings.init_method, settings.init_method_std, settings.num_layers, settings.hidden_size),
        init_std(
            settings.output_layer_init_method, settings.init_method_std, settings.num_layers, settings.hidden_size
        ),
    )


def allocate_only(tensor):
    """The init_method handed to megatron-core's layers: they only allocate; this module draws the values."""
    return tensor


def seeded_generator(seed: int, *names) -> torch.Generator:
    digest = hashlib.sha256("/".join(map(str, (seed, *names))).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def normal(std: float):
    return lambda tensor, generator: tensor.normal_(0.0, std, generator=generator)


def uniform(bound: float):
    return lambda tensor, generator: tensor.uniform_(-bound, bound, generator=generator)


def zeros():
    return lambda tensor, generator: tensor.zero_()


def local_shard(full_shape, partition_dim, draw, seed, *names) -> torch.Tensor:
    """This rank's part of a full tensor drawn on the CPU (partition_dim None: the whole, replicated)."""
    full = draw(torch.empty(full_shape), seeded_generator(seed, *names))
    if partition_dim is None:
        return full
    return full.chunk(parallel.tensor_parallel_size(), dim=partition_dim)[parallel.tensor_parallel_rank()]


@torch.no_grad()
def fill_(param: torch.Tensor, shard: torch.Tensor) -> None:
    if param.is_meta:  # size accounting builds on the meta device: nothing to draw
        return
    if param.shape != shard.shape:
        raise ValueError(
            f"initialiser made a shard of shape {tuple(shard.shape)} for a parameter of shape {tuple(param.shape)}"
        )
    param.copy_(shard)


def mark_tensor_parallel(param: torch.Tensor, partition_dim: int, fused_part_sizes: tuple | None = None) -> None:
    """Tell DeepSpeed's grad-norm and megatron's checkpoint tools that this parameter is a TP shard.

    Parameters without the mark are replicated across TP ranks and are counted once in the global norm.
    `fused_part_sizes`: full sizes of the parts of a fused projection (see model.reshard).
    """
    param.tensor_model_parallel = True
    param.partition_dim = partition_dim
    param.partition_stride = 1
    if fused_part_sizes:
        param.fused_part_sizes = tuple(fused_part_sizes)

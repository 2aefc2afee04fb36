"""Values computed from the world size once the launcher is known (stage three of validation, continued)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError
from .fields import Section


@dataclass
class DerivedConfig(Section):
    """Filled by NeoXArgs.resolve(world_size); never set in a YAML file, but travels in to_dict()."""

    world_size: int | None = None
    """Total processes (GPUs). NeoX calls it global_num_gpus."""

    data_parallel_size: int | None = None
    """world_size / (model_parallel_size * max(pipe_parallel_size, 1))."""

    warmup_iters: int | None = None
    """int(warmup * lr_decay_iters): the iterations of linear warmup."""


def data_parallel_size(world_size: int, model_parallel_size: int, pipe_parallel_size: int) -> int:
    """Ranks that hold a full model replica; the product of the parallel sizes must divide the world size."""
    model_ranks = model_parallel_size * max(pipe_parallel_size, 1)
    if world_size < 1 or world_size % model_ranks:
        raise ValueError(
            f"world size {world_size} is not divisible by model_parallel_size ({model_parallel_size}) x "
            f"max(pipe_parallel_size, 1) ({max(pipe_parallel_size, 1)}) = {model_ranks}; change the GPU count "
            f"or the parallel sizes"
        )
    return world_size // model_ranks


def batch_sizes(micro: int | None, accumulation: int | None, global_batch: int | None, dp: int) -> tuple[int, int, int]:
    """(micro, accumulation, global) with global = micro * accumulation * dp, deriving what is missing.

    As in NeoX: any two determine the third; global alone means accumulation 1; micro alone means
    accumulation 1. A ValueError names all four numbers when they cannot agree.
    """
    if global_batch is not None and micro is None:
        accumulation = accumulation or 1
        micro = global_batch // (accumulation * dp)
    elif global_batch is not None and accumulation is None:
        accumulation = global_batch // (micro * dp)
    accumulation = accumulation or 1
    expected = micro * accumulation * dp
    if global_batch is None:
        global_batch = expected
    if micro < 1 or accumulation < 1 or global_batch != expected:
        raise ValueError(
            f"train_batch_size ({global_batch}) must equal train_micro_batch_size_per_gpu ({micro}) x "
            f"gradient_accumulation_steps ({accumulation}) x data-parallel size ({dp}) = {expected}; change "
            f"one of them, or drop train_batch_size to derive it"
        )
    return micro, accumulation, global_batch


def check_world_size_matches(expected: int | None, actual: int, where: str) -> None:
    """train.py's guard: the process count it finds must be the one deepy.py resolved the batch sizes for."""
    if expected is not None and expected != actual:
        raise ConfigError(
            f"the config was resolved for world_size {expected} but {actual} processes were "
            f"started; launch it with deepy.py again",
            where,
            "world_size",
        )

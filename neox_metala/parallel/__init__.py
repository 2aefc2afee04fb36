"""Parallel state: the only package that talks to megatron-core's parallel_state and builds DeepSpeed's mpu."""

from .state import (
    MegatronMPU,
    ParallelLayout,
    data_parallel_group,
    data_parallel_rank,
    data_parallel_size,
    default_backend,
    destroy,
    free_port,
    gather_tensor_parallel,
    initialize,
    linear_config,
    pipeline_topology,
    run_cpu_ranks,
    tensor_parallel_group,
    tensor_parallel_rank,
    tensor_parallel_size,
)

__all__ = [
    "MegatronMPU",
    "ParallelLayout",
    "data_parallel_group",
    "data_parallel_rank",
    "data_parallel_size",
    "default_backend",
    "destroy",
    "free_port",
    "gather_tensor_parallel",
    "initialize",
    "linear_config",
    "pipeline_topology",
    "run_cpu_ranks",
    "tensor_parallel_group",
    "tensor_parallel_rank",
    "tensor_parallel_size",
]

"""The one adapter between megatron-core's parallel_state and DeepSpeed.

Rank layout (both libraries agree on it): tensor-parallel innermost, then data-parallel, pipeline outermost.
megatron-core owns the groups the layers use (TP all-reduces inside Column/RowParallelLinear); DeepSpeed's
pipeline engine gets a topology with the same layout, its plain engine gets `MegatronMPU`.
Works on CUDA/NCCL and on CPU/gloo (tests and the embedded default).
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist
from megatron.core import parallel_state, tensor_parallel
from megatron.core.model_parallel_config import ModelParallelConfig


@dataclass(frozen=True)
class ParallelLayout:
    world_size: int
    tensor_parallel: int
    pipeline_parallel: int  # number of pipeline stages (1 when the pipeline engine is off)
    data_parallel: int


def default_backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def _start_process_group(backend: str) -> None:
    import deepspeed

    if backend == "gloo":
        # DeepSpeed JIT-builds a shared-memory comm op (~50 s of g++) on every CPU init; gloo does not need it.
        # `deepspeed.comm.torch` as an attribute is torch itself (star import), hence sys.modules.
        sys.modules["deepspeed.comm.torch"].build_shm_op = lambda: None
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    deepspeed.init_distributed(dist_backend=backend, verbose=False)


def initialize(tensor_parallel: int = 1, pipeline_parallel: int = 1, backend: str | None = None) -> ParallelLayout:
    """Start torch.distributed (from the launcher's env, or a 1-process group) and the model-parallel groups."""
    if not dist.is_initialized():
        os.environ.setdefault("RANK", "0")
        os.environ.setdefault("LOCAL_RANK", "0")
        os.environ.setdefault("WORLD_SIZE", "1")
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29500")
        _start_process_group(backend or default_backend())
    world_size = dist.get_world_size()
    model_parallel = tensor_parallel * pipeline_parallel
    if world_size % model_parallel:
        raise ValueError(
            f"world size {world_size} is not divisible by model_parallel_size {tensor_parallel} "
            f"x pipeline stages {pipeline_parallel}"
        )
    if parallel_state.model_parallel_is_initialized():
        parallel_state.destroy_model_parallel()
    # No extra gloo copies of every group: nothing here needs them, and they cost start-up time at scale.
    parallel_state.initialize_model_parallel(
        tensor_model_parallel_size=tensor_parallel,
        pipeline_model_parallel_size=pipeline_parallel,
        create_gloo_process_groups=False,
    )
    return ParallelLayout(world_size, tensor_parallel, pipeline_parallel, world_size // model_parallel)


def destroy() -> None:
    if parallel_state.model_parallel_is_initialized():
        parallel_state.destroy_model_parallel()
    if dist.is_initialized():
        dist.destroy_process_group()


def tensor_parallel_rank() -> int:
    return parallel_state.get_tensor_model_parallel_rank() if parallel_state.model_parallel_is_initialized() else 0


def tensor_parallel_size() -> int:
    if not parallel_state.model_parallel_is_initialized():
        return 1
    return parallel_state.get_tensor_model_parallel_world_size()


def tensor_parallel_group():
    return parallel_state.get_tensor_model_parallel_group()


def gather_tensor_parallel(tensor: torch.Tensor) -> torch.Tensor:
    """Each tensor-parallel rank's `tensor`, concatenated along the last dimension in rank order (no autograd),
    on every rank of the group: e.g. vocab-parallel logits (seq, batch, vocab / tp) -> (seq, batch, vocab)."""
    size = tensor_parallel_size()
    if size == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(size)]
    dist.all_gather(parts, tensor.contiguous(), group=tensor_parallel_group())
    return torch.cat(parts, dim=-1)


def data_parallel_rank() -> int:
    return parallel_state.get_data_parallel_rank()


def data_parallel_size() -> int:
    return parallel_state.get_data_parallel_world_size()


def data_parallel_group():
    return parallel_state.get_data_parallel_group()


def linear_config(params_dtype: torch.dtype = torch.float32, on_gpu: bool | None = None) -> ModelParallelConfig:
    """Settings for megatron-core's parallel linears and embedding.

    Initialisation is ours (neox_metala.layers.init: the full matrix from a seeded generator, then the shard),
    so megatron-core only allocates. CPU allocation is also what building on the meta device needs: megatron-core's
    GPU allocation names the current CUDA device itself, past a `with torch.device("meta")` (a checkpoint's layout
    change on a GPU machine then built the whole model on the GPU and failed copying a meta shard into it).
    """
    if on_gpu is None:
        on_gpu = torch.cuda.is_available() and torch.get_default_device().type != "meta"
    return ModelParallelConfig(
        tensor_model_parallel_size=tensor_parallel_size(),
        params_dtype=params_dtype,
        use_cpu_initialization=not on_gpu,
        perform_initialization=False,
        gradient_accumulation_fusion=False,
        sequence_parallel=False,
    )


class RowParallelLinear(tensor_parallel.RowParallelLinear):
    """megatron-core's, with the layer's own TP group handed to its GEMM. megatron-core 0.16's forward passes
    tp_group=None there, whose fallback calls warnings.warn (a DeprecationWarning) on every call of rank 0: inside
    a compiled block that call ends the graph, and telling dynamo to ignore warn calls instead makes torch 2.11 log
    an error for every compiled graph (it cannot serialize the function in its config)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        gemm, group = self._forward_impl, self.tp_group

        def gemm_with_group(*gemm_args, tp_group=None, **gemm_kwargs):
            return gemm(*gemm_args, tp_group=group, **gemm_kwargs)

        self._forward_impl = gemm_with_group


class ColumnParallelLinear(tensor_parallel.ColumnParallelLinear):
    """megatron-core's, with the input gradient's all-reduce done by the copy-to-region function (synchronous, a
    collective torch.compile traces) instead of its GEMM's asynchronous one. The asynchronous all-reduce in the
    GEMM's backward (and the CUDA_DEVICE_MAX_CONNECTIONS warning beside it) cannot be traced: with TP > 1 every
    compiled block fell apart into 8 graphs around eager column projections (CPU, gloo, session 10)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.allreduce_dgrad = False  # forward() then applies copy_to_tensor_model_parallel_region to the input


def pipeline_topology(layout: ParallelLayout):
    from deepspeed.runtime.pipe.topology import PipeModelDataParallelTopology

    return PipeModelDataParallelTopology(
        num_pp=layout.pipeline_parallel, num_mp=layout.tensor_parallel, num_dp=layout.data_parallel
    )


class MegatronMPU:
    """The `mpu` object DeepSpeed's plain engine asks for (grad-norm groups, data-parallel reduction)."""

    get_model_parallel_rank = staticmethod(parallel_state.get_tensor_model_parallel_rank)
    get_model_parallel_world_size = staticmethod(parallel_state.get_tensor_model_parallel_world_size)
    get_model_parallel_group = staticmethod(parallel_state.get_tensor_model_parallel_group)
    get_tensor_model_parallel_rank = staticmethod(parallel_state.get_tensor_model_parallel_rank)
    get_tensor_model_parallel_world_size = staticmethod(parallel_state.get_tensor_model_parallel_world_size)
    get_tensor_model_parallel_group = staticmethod(parallel_state.get_tensor_model_parallel_group)
    get_data_parallel_rank = staticmethod(parallel_state.get_data_parallel_rank)
    get_data_parallel_world_size = staticmethod(parallel_state.get_data_parallel_world_size)
    get_data_parallel_group = staticmethod(parallel_state.get_data_parallel_group)
    get_pipeline_model_parallel_rank = staticmethod(parallel_state.get_pipeline_model_parallel_rank)
    get_pipeline_model_parallel_world_size = staticmethod(parallel_state.get_pipeline_model_parallel_world_size)
    get_pipeline_model_parallel_group = staticmethod(parallel_state.get_pipeline_model_parallel_group)


def free_port() -> int:
    """An unused local TCP port for a process group's rendezvous."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# How run_cpu_ranks starts its processes: "spawn", a fresh interpreter for each. (The tests, which start many, use
# "forkserver" with a server that has imported torch and this package once: tests/dist_helpers.py.)
CPU_RANKS_START_METHOD = "spawn"


def run_cpu_ranks(worker, world_size: int, *args) -> None:
    """`worker(rank, world_size, *args)` in `world_size` spawned CPU processes that can join one gloo group
    (the offline tools: checkpoint conversion, checkpoint import)."""
    import torch.multiprocessing as mp

    arguments = (worker, world_size, free_port(), args)
    mp.start_processes(_cpu_rank, args=arguments, nprocs=world_size, start_method=CPU_RANKS_START_METHOD)


def cpu_rank_environment(rank: int, world_size: int, port: int) -> dict[str, str]:
    """The environment of one rank of a local gloo group on CPUs (DeepSpeed too), meeting at 127.0.0.1:port. GPUs
    hidden: on a GPU machine the code under it would otherwise pick CUDA and NCCL (and a device per rank)."""
    return {
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "DS_ACCELERATOR": "cpu",
        "CUDA_VISIBLE_DEVICES": "",
    }


def _cpu_rank(rank: int, worker, world_size: int, port: int, args: tuple) -> None:
    os.environ.update(cpu_rank_environment(rank, world_size, port))
    worker(rank, world_size, *args)

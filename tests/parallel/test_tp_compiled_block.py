"""A compiled block under TP=2 is one graph and computes what the eager block computes (whose TP=2 equality with one
rank tests/parallel/test_tensor_pipeline_parallel.py checks). megatron-core's column projections all-reduced the
input gradient asynchronously in their GEMM's backward, which torch.compile cannot trace: every compiled MetaLA block
fell apart into 8 graphs around eager projections (found on CPU with gloo in session 10, after TP=2 on two H200s ran
at a quarter of one GPU's tokens/s per GPU)."""

import pytest
import torch

from dist_helpers import run_workers

pytestmark = pytest.mark.multiproc


def compiled_and_eager(rank, world_size):
    from torch._dynamo.utils import counters

    from neox_metala import parallel
    from neox_metala.layers.block import ParallelBlock
    from neox_metala.layers.settings import BlockSettings
    from neox_metala.ops import metala

    parallel.initialize(tensor_parallel=world_size, pipeline_parallel=1)
    cpu_backend = metala.choose_backend
    results = {}
    for kind in ("metala", "attention"):
        settings = BlockSettings(
            hidden_size=64, num_attention_heads=4, num_layers=1, norm="rmsnorm", params_dtype=torch.float64
        )
        block = ParallelBlock(settings, 0, kind)
        x = torch.randn(32, 2, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
        x.requires_grad_()
        metala.choose_backend = cpu_backend
        eager = block(x)
        eager_grads = torch.autograd.grad(eager.square().sum(), [x, *block.parameters()])
        metala.choose_backend = lambda requested, tensor: "fla"  # the GPU dispatch (custom ops), on CPU tensors
        torch._dynamo.reset()
        counters.clear()
        block.compile()
        compiled = block(x)
        compiled_grads = torch.autograd.grad(compiled.square().sum(), [x, *block.parameters()])
        differences = [
            ((got - want).norm() / want.norm()).item()
            for got, want in zip((compiled, *compiled_grads), (eager, *eager_grads))
        ]
        results[kind] = counters["stats"]["unique_graphs"], dict(counters["graph_break"]), max(differences)
    return results


def test_compiled_block_under_tensor_parallelism_is_one_graph_and_equals_eager(tmp_path):
    for rank_results in run_workers(compiled_and_eager, 2, tmp_path):
        for kind, (graphs, breaks, difference) in rank_results.items():
            assert graphs == 1 and not breaks, (kind, graphs, list(breaks)[:1])
            assert difference <= 1e-6, (kind, difference)  # the block norms compute in fp32

"""torch_compile_mode: reduce-overhead marks where each micro batch's forward begins for the CUDA-graph trees (one
pipeline stage only: a pipeline's stages run several forwards before their backwards, whose inputs a new step
would let the graphs overwrite)."""

import pytest

from runtime_helpers import SMALL_MODEL, sample_data_settings


def marks_steps(sample_data, **settings) -> bool:
    from neox_metala import parallel
    from neox_metala.config import NeoXArgs
    from neox_metala.training import engine

    values = {**SMALL_MODEL, **sample_data_settings(sample_data), "train_iters": 2, "torch_compile": True, **settings}
    args = NeoXArgs.from_flat(values, {}).resolve(1)
    model = engine.build_model(args, parallel.initialize(1, 1), 8192)
    return engine._new_cuda_graph_step in model._forward_pre_hooks.values()


@pytest.mark.parametrize("pipe_parallel_size", [0, 1])
def test_reduce_overhead_with_one_stage_marks_each_forward(sample_data, single_rank, pipe_parallel_size):
    assert marks_steps(sample_data, torch_compile_mode="reduce-overhead", pipe_parallel_size=pipe_parallel_size)


def test_other_modes_leave_the_steps_to_the_compiler(sample_data, single_rank):
    assert not marks_steps(sample_data, torch_compile_mode="default", pipe_parallel_size=1)

"""The compiled MetaLA mixer's default memory budget keeps its expensive custom ops out of the backward: a budget
below 1 makes torch's partitioner recompute whatever its flop count calls cheap, and it counts no flops for custom
ops, so with the epilogue on its own kernels (no cheap elementwise steps left in the graph) it ran the core's
forward again in the backward (CPU stand-in for the GPU path: the fla backend's routing, the ops' CPU kernels)."""

import pytest
import torch
from torch.profiler import ProfilerActivity, profile


@pytest.mark.parametrize("epilogue_kernel", ["compiled", "triton"])
def test_default_budget_runs_no_forward_op_in_the_backward(monkeypatch, single_rank, epilogue_kernel):
    from neox_metala.layers.mixer import MetaLAMixer
    from neox_metala.layers.settings import BlockSettings
    from neox_metala.ops import MetaLAOptions, metala
    from neox_metala.training.engine import default_memory_budget

    monkeypatch.setattr(metala, "choose_backend", lambda requested, tensor: "fla")
    torch._dynamo.reset()
    options = MetaLAOptions(epilogue_kernel=epilogue_kernel)
    settings = BlockSettings(hidden_size=64, num_attention_heads=2, num_layers=2, metala=options)
    mixer = MetaLAMixer(settings, layer_number=0)
    hidden = torch.randn(64, 2, 64, requires_grad=True)  # (seq, batch, hidden)
    budget = default_memory_budget(True, options)
    with torch._functorch.config.patch(activation_memory_budget=budget):
        output = torch.compile(mixer, dynamic=False)(hidden)
    with profile(activities=[ProfilerActivity.CPU]) as backward:
        output.backward(torch.randn_like(output))
    ran = {event.name for event in backward.events() if event.name.startswith("neox_metala::")}
    assert "neox_metala::metala_core_backward" in ran  # the custom ops are in the graph
    assert not {name for name in ran if name.endswith("_forward")}, ran


def test_the_budget_is_below_one_only_where_a_compiled_epilogue_runs():
    from neox_metala.ops import MetaLAOptions
    from neox_metala.training.engine import METALA_MEMORY_BUDGET, default_memory_budget

    assert default_memory_budget(True, MetaLAOptions()) == 1.0  # MetaLA's own epilogue kernels: the default
    assert default_memory_budget(True, MetaLAOptions(epilogue_kernel="compiled")) == METALA_MEMORY_BUDGET
    assert default_memory_budget(True, MetaLAOptions(fused_kernels=True)) == METALA_MEMORY_BUDGET  # its own epilogue
    assert default_memory_budget(False, MetaLAOptions(epilogue_kernel="compiled")) == 1.0  # attention only

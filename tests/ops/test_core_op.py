"""The core as custom ops (ops/core_op.py) and the compiled block around it: the op's registrations are
checked by torch.library.opcheck, its values and gradients against the recurrent reference (fp64, CPU kernel),
and a block compiled with the GPU dispatch (core op + shifted-sum conv) is one graph whose outputs and
gradients equal the eager block's."""

import pytest
import torch

from neox_metala.ops import core_op, reference
from neox_metala.ops.causal_conv import short_conv_shifted, short_conv_torch

F64 = torch.float64


def gla_inputs(batch=2, seq=37, heads=3, k=4, v=6, seed=3):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, seq, heads, k, dtype=F64, generator=gen)
    key = torch.rand(batch, seq, heads, k, dtype=F64, generator=gen)
    values = torch.randn(batch, seq, heads, v, dtype=F64, generator=gen)
    log_decay = -torch.rand(batch, seq, heads, k, dtype=F64, generator=gen)
    return q, key, values, log_decay


def test_core_op_values_and_gradients_equal_the_recurrence():
    inputs = [t.requires_grad_() for t in gla_inputs()]
    output = core_op.gla_core(*inputs, 0.5)
    expected, _ = reference.recurrent_gla_reference(*[t.detach().requires_grad_() for t in inputs], 0.5)
    cotangent = torch.randn_like(output)
    grads = torch.autograd.grad(output, inputs, cotangent)
    ref_inputs = [t.detach().requires_grad_() for t in inputs]
    ref_out, _ = reference.recurrent_gla_reference(*ref_inputs, 0.5)
    ref_grads = torch.autograd.grad(ref_out, ref_inputs, cotangent)
    assert torch.allclose(output, expected, rtol=1e-10, atol=1e-12)
    for got, want in zip(grads, ref_grads):
        assert torch.allclose(got, want, rtol=1e-10, atol=1e-12)


def test_core_op_registrations_pass_opcheck():
    inputs = [t.requires_grad_() for t in gla_inputs(seq=20)]
    torch.library.opcheck(core_op.gla_forward, (*inputs, 0.5))


def test_shifted_conv_equals_conv1d():
    gen = torch.Generator().manual_seed(4)
    x, weight = torch.randn(2, 9, 5, dtype=F64, generator=gen), torch.randn(5, 4, dtype=F64, generator=gen)
    expected, _ = short_conv_torch(x, weight)
    assert torch.allclose(short_conv_shifted(x, weight), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("core_kernel", ["fla", "metala"])
def test_compiled_block_with_gpu_dispatch_is_one_graph_and_equals_eager(single_rank, monkeypatch, core_kernel):
    """core_kernel "metala": MetaLA's own core op (ops/metala_core_op.py) in the graph instead of fla's."""
    from torch._dynamo.utils import counters

    from neox_metala.layers.block import ParallelBlock
    from neox_metala.layers.settings import BlockSettings
    from neox_metala.ops import MetaLAOptions, metala
    from neox_metala.training.engine import METALA_MEMORY_BUDGET

    settings = BlockSettings(
        hidden_size=32,
        num_attention_heads=2,
        num_layers=1,
        params_dtype=F64,
        norm="rmsnorm",
        metala=MetaLAOptions(core_kernel=core_kernel),
    )
    block = ParallelBlock(settings, 0, "metala")
    x = torch.randn(40, 2, 32, dtype=F64, generator=torch.Generator().manual_seed(5), requires_grad=True)
    eager = block(x)  # CPU dispatch: chunked core, conv1d
    eager_grads = torch.autograd.grad(eager.square().sum(), [x, *block.parameters()])

    # The GPU dispatch on CPU tensors: the core op (its CPU kernel) and, while compiling, the shifted conv.
    monkeypatch.setattr(metala, "choose_backend", lambda requested, tensor: "fla")
    torch._dynamo.reset()
    counters.clear()
    block.compile()
    # The memory budget training sets for MetaLA models: steps recomputed in backward must give the same gradients
    # (config.patch, not monkeypatch: undoing a monkeypatch deletes a torch config entry for later tests).
    with torch._functorch.config.patch(activation_memory_budget=METALA_MEMORY_BUDGET):
        compiled = block(x)
        compiled_grads = torch.autograd.grad(compiled.square().sum(), [x, *block.parameters()])
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"], dict(counters["graph_break"])
    # fp32-level agreement: the block's norms compute in fp32 (layers/norms.py), fused differently when compiled
    assert torch.allclose(compiled, eager, rtol=1e-6, atol=1e-7), (compiled - eager).abs().max()
    for got, want in zip(compiled_grads, eager_grads):
        assert torch.allclose(got, want, rtol=1e-6, atol=1e-7)


def test_cumulative_lengths_are_computed_once_per_document_starts_tensor():
    """One host sync per micro batch: the layers' repeated calls with the same tensor reuse the last result; a
    tensor changed in place or another tensor (even at a freed tensor's address) gets its own lengths."""

    def direct(starts):
        flat = starts.clone()
        flat[:, 0] = True
        return torch.cat([flat.flatten().nonzero().flatten(), torch.tensor([starts.numel()])])

    starts = torch.zeros(2, 6, dtype=torch.bool)
    starts[0, 3] = True
    first = core_op.cumulative_lengths(starts)
    assert torch.equal(first, direct(starts)) and core_op.cumulative_lengths(starts) is first
    starts[1, 2] = True  # in place: the version changes
    assert torch.equal(core_op.cumulative_lengths(starts), direct(starts))
    for position in range(1, 6):  # new tensors, possibly at a reused address
        other = torch.zeros(2, 6, dtype=torch.bool)
        other[1, position] = True
        assert torch.equal(core_op.cumulative_lengths(other), direct(other))

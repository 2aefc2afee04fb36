"""The short convolution's custom ops (ops/short_conv_op.py) on the CPU: values and both gradients through the op's
autograd against the step-by-step fp64 reference, at awkward sizes, with a strided (transposed) input as the layer
hands it; the registrations under torch.library.opcheck; the refusal of packed documents; and the routing of
metala_conv_kernel="triton" in a compiled block on the fla backend (the mixer's output and gradients equal the
shifted form's)."""

import pytest
import torch

from neox_metala.ops import reference, short_conv_op

F64 = torch.float64


def draw(batch, seq, channels, width, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, seq, channels, dtype=F64, generator=gen)
    weight = torch.randn(channels, width, dtype=F64, generator=gen)
    cotangent = torch.randn(batch, seq, channels, dtype=F64, generator=gen)
    return x, weight, cotangent


@pytest.mark.parametrize(
    "batch, seq, channels, width",
    [(2, 1, 3, 4), (2, 3, 5, 4), (1, 5, 7, 4), (2, 130, 33, 4), (2, 9, 6, 3), (1, 4, 2, 1)],
    ids=["T1-C3", "T3-C5", "T5-C7", "T130-C33", "T9-W3", "T4-W1"],
)
def test_op_values_and_gradients_equal_the_reference(batch, seq, channels, width):
    x, weight, cotangent = draw(batch, seq, channels, width)
    x, weight = x.requires_grad_(), weight.requires_grad_()
    output = short_conv_op.short_conv_silu(x, weight)
    expected, _ = reference.short_conv_reference(x, weight)
    grads = torch.autograd.grad(output, (x, weight), cotangent)
    expected_grads = torch.autograd.grad(expected, (x, weight), cotangent)
    assert torch.allclose(output, expected, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, expected_grads):
        assert torch.allclose(got, want, rtol=1e-10, atol=1e-12)


def test_strided_input_and_low_precision_dtypes():
    """A (seq, batch) transpose as the layer passes it, bf16 x with an fp32 weight: y and dx in bf16, dweight in
    fp32, each within bf16 rounding of the fp64 reference on the same (rounded) inputs."""
    x, weight, cotangent = draw(3, 20, 8, 4, seed=1)
    x_seq_first = x.transpose(0, 1).contiguous().bfloat16().requires_grad_()  # (T, B, C)
    weight32 = weight.float().requires_grad_()
    output = short_conv_op.short_conv_silu(x_seq_first.transpose(0, 1), weight32)
    dx, dweight = torch.autograd.grad(output, (x_seq_first, weight32), cotangent.bfloat16())
    assert (output.dtype, dx.dtype, dweight.dtype) == (torch.bfloat16, torch.bfloat16, torch.float32)
    leaves = [x_seq_first.double().transpose(0, 1).requires_grad_(), weight32.double().requires_grad_()]
    expected, _ = reference.short_conv_reference(*leaves)
    expected_dx, expected_dweight = torch.autograd.grad(expected, leaves, cotangent.bfloat16().double())
    for got, want in ((output, expected), (dx.transpose(0, 1), expected_dx), (dweight, expected_dweight)):
        assert (got.double() - want).norm() <= 1e-2 * want.norm()


def test_op_registrations_pass_opcheck():
    x, weight, cotangent = draw(2, 6, 5, 4)
    torch.library.opcheck(short_conv_op.short_conv_forward, (x.requires_grad_(), weight.requires_grad_()))
    torch.library.opcheck(short_conv_op.short_conv_backward, (x.detach(), weight.detach(), cotangent))


def test_packed_documents_are_refused():
    x, weight, _ = draw(1, 4, 2, 4)
    with pytest.raises(ValueError, match="packed documents"):
        short_conv_op.short_conv_silu(x, weight, document_starts=torch.zeros(1, 4, dtype=torch.bool))


@pytest.mark.parametrize("compiled", [False, True], ids=["is_compiling-patched", "torch.compile"])
def test_conv_kernel_option_routes_compiled_blocks_to_the_op(monkeypatch, compiled):
    """metala_conv_kernel="triton": the mixer's short conv runs this op where a compiled block on the fla backend
    runs the shifted form (the CPU stands in for the GPU), equal to it in fp64, gradients included; packed
    documents keep the shifted form."""
    from neox_metala.ops import metala

    monkeypatch.setattr(metala, "choose_backend", lambda requested, tensor: "fla")
    calls = []
    op = short_conv_op.short_conv_silu
    monkeypatch.setattr(short_conv_op, "short_conv_silu", lambda *args, **kw: calls.append(1) or op(*args, **kw))
    if not compiled:
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    x, weight, cotangent = draw(2, 11, 6, 4, seed=3)

    def conv(kernel, document_starts=None):
        leaves = (x.clone().requires_grad_(), weight.clone().requires_grad_())

        def run(inputs, conv_weight):
            return metala.short_conv(
                inputs, conv_weight, backend="fla", conv_kernel=kernel, document_starts=document_starts
            )[0]

        output = (torch.compile(run, backend="eager", fullgraph=True) if compiled else run)(*leaves)
        return output, torch.autograd.grad(output, leaves, cotangent)

    mine, my_grads = conv("triton")
    assert len(calls) == 1
    expected, expected_grads = conv("shifted")
    assert len(calls) == 1
    assert torch.allclose(mine, expected, rtol=1e-12, atol=1e-12)
    for got, want in zip(my_grads, expected_grads):
        assert torch.allclose(got, want, rtol=1e-10, atol=1e-12)
    starts = torch.zeros(2, 11, dtype=torch.bool)
    starts[:, 4] = True
    conv("triton", document_starts=starts)
    assert len(calls) == 1


@pytest.mark.skipif(
    torch.cuda.is_available(),
    reason="the layer's parameters live on the GPU, where fp64 is no Triton dtype: see test_short_conv_triton.py",
)
def test_mixer_routes_its_short_conv_by_the_option(monkeypatch, single_rank):
    """conv_kernel="triton" in a compiled block on the fla backend runs the op, equal to the shifted form."""
    from mixer_routing import assert_mixer_routes

    calls = []
    op = short_conv_op.short_conv_silu
    monkeypatch.setattr(short_conv_op, "short_conv_silu", lambda *args, **kw: calls.append(1) or op(*args, **kw))
    assert_mixer_routes(monkeypatch, "conv_kernel", "triton", "shifted", calls, lambda mixer: (mixer.conv_weight,))

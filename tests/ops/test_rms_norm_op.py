"""ops/rms_norm_op.py on the CPU: the RMS norm and its residual form (h, y) = (x + residual, norm(h)) as custom
ops, outputs and every gradient (x, residual, scale) against autograd of the plain formula in fp64, with and
without a scale, for leading dims of any rank and non-contiguous inputs; their registrations under
torch.library.opcheck; that the residual form keeps only h and the scale; the input errors; and the block norms
(layers/norms.py) on them equal to the formula. The Triton kernels: tests/ops/test_rms_norm_triton.py."""

import pytest
import torch
from torch import nn

from neox_metala.layers import norms
from neox_metala.ops import rms_norm_op

F64 = torch.float64
EPS = 1e-6


def plain(x, residual, weight, eps=EPS):
    h = x if residual is None else x + residual
    y = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return h, y if weight is None else y * weight


def draw(leading, width, seed=0, dtype=F64):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*leading, width + 2, generator=gen, dtype=dtype)[..., 2:]  # a strided view
    residual = torch.randn(*leading, width, generator=gen, dtype=dtype)
    weight = 1 + 0.3 * torch.randn(width, generator=gen, dtype=dtype)
    dh, dy = torch.randn(2, *leading, width, generator=gen, dtype=dtype)
    return x, residual, weight, dh, dy


def grads(outputs_of, inputs, d_outputs):
    inputs = [t.detach().requires_grad_() for t in inputs]
    outputs = outputs_of(*inputs)
    return (*outputs, *torch.autograd.grad(outputs, inputs, d_outputs))


SHAPES = [((7, 3), 24), ((5,), 1), ((2, 3, 4), 37)]


@pytest.mark.parametrize("leading, width", SHAPES)
@pytest.mark.parametrize("scaled", [True, False], ids=["scale", "no-scale"])
def test_residual_form_equals_the_formula_in_fp64(leading, width, scaled):
    x, residual, weight, dh, dy = draw(leading, width)
    inputs = [x, residual] + ([weight] if scaled else [])

    def ours(x, residual, weight=None):
        return rms_norm_op.add_rms_norm(x, residual, weight, EPS)

    def theirs(x, residual, weight=None):
        return plain(x, residual, weight)

    for got, want in zip(grads(ours, inputs, (dh, dy)), grads(theirs, inputs, (dh, dy)), strict=True):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("leading, width", SHAPES)
@pytest.mark.parametrize("scaled", [True, False], ids=["scale", "no-scale"])
def test_plain_form_equals_the_formula_in_fp64(leading, width, scaled):
    x, _, weight, _, dy = draw(leading, width, seed=1)
    inputs = [x] + ([weight] if scaled else [])

    def ours(x, weight=None):
        return (rms_norm_op.rms_norm(x, weight, EPS),)

    def theirs(x, weight=None):
        return (plain(x, None, weight)[1],)

    for got, want in zip(grads(ours, inputs, (dy,)), grads(theirs, inputs, (dy,)), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_half_inputs_compute_in_fp32_and_round_once():
    x, residual, weight, _, _ = draw((64,), 48, seed=2, dtype=torch.float32)
    xb, rb, wb = x.bfloat16(), residual.bfloat16(), weight.bfloat16()
    h, y = rms_norm_op.add_rms_norm(xb, rb, wb, EPS)
    h_want = (xb.double() + rb.double()).bfloat16()  # one rounding of the exact sum
    assert h.dtype == y.dtype == torch.bfloat16 and torch.equal(h, h_want)
    y_want = plain(h_want.double(), None, wb.double())[1]
    assert ((y.double() - y_want).abs() <= y_want.abs() * 2**-8 + 1e-30).all()


def test_op_registrations_pass_opcheck():
    x, residual, weight, dh, dy = draw((6, 2), 16)
    x = x.contiguous()
    torch.library.opcheck(rms_norm_op.rms_norm_op, (x.requires_grad_(), weight.requires_grad_(), EPS))
    torch.library.opcheck(rms_norm_op.add_rms_norm_op, (x, residual.requires_grad_(), weight, EPS))
    torch.library.opcheck(rms_norm_op.add_rms_norm_op, (x, residual, None, EPS))
    torch.library.opcheck(rms_norm_op.rms_norm_backward, (x.detach(), dy, dh, weight.detach(), EPS))
    torch.library.opcheck(rms_norm_op.rms_norm_backward, (x.detach(), dy, None, None, EPS))


def test_residual_form_keeps_only_the_sum_and_the_scale():
    """1/rms is formed again in the backward and x, residual are not needed: only h and the scale are saved."""
    x, residual, weight, _, _ = draw((64, 2), 32)
    saved = []
    inputs = [t.requires_grad_() for t in (x, residual, weight)]
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        rms_norm_op.add_rms_norm(*inputs, EPS)
    assert sorted(tuple(t.shape) for t in saved) == sorted([(64, 2, 32), (32,)])


def test_bad_inputs_name_the_shapes():
    x, residual, weight, _, _ = draw((4,), 8)
    with pytest.raises(ValueError, match=r"weight \(7,\)"):
        rms_norm_op.rms_norm(x, weight[:7], EPS)
    with pytest.raises(ValueError, match=r"residual \(4, 7\)"):
        rms_norm_op.add_rms_norm(x, residual[:, :7], weight, EPS)


@pytest.mark.parametrize("name", ["rmsnorm", "simple_rmsnorm", "layernorm"])
def test_block_norms_add_and_norm_equal_the_formula(name):
    x, residual, weight, _, _ = draw((5, 3), 16, seed=3)
    norm = norms.build_norm(name, 16, EPS).double()
    if name == "rmsnorm":
        with torch.no_grad():
            norm.scale.copy_(weight)
    h, y = norms.add_and_norm(norm, x, residual)
    torch.testing.assert_close(h, x + residual, rtol=0, atol=0)
    if name == "layernorm":
        want = nn.functional.layer_norm(x + residual, (16,), norm.weight, norm.bias, EPS)
    else:
        want = plain(x, residual, weight if name == "rmsnorm" else None, norm.eps)[1]
    torch.testing.assert_close(y, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(norm(x + residual), want, rtol=1e-12, atol=1e-12)

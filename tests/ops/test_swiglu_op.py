"""ops/swiglu_op.py on the CPU: the SwiGLU activation and down projection as one op, output and the gradients of h
and the weight against autograd of the plain (F.silu(gate) * up) @ Wᵀ in fp64, with h a strided view and leading
dims of any rank; its registrations under torch.library.opcheck; its input errors; that its autograd keeps only h
and the weight; and the MLP (layers/mlp.py) on it equal to the plain formula. The Triton kernels:
tests/ops/test_swiglu_triton.py."""

import pytest
import torch
import torch.nn.functional as F

from neox_metala.ops import swiglu_op

F64 = torch.float64


def plain(h, weight):
    gate, up = h.chunk(2, dim=-1)
    return (F.silu(gate) * up) @ weight.t()


def draw(leading, width, hidden, seed=0, dtype=F64):
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(*leading, 2 * width + 3, generator=gen, dtype=dtype)[..., 3:]  # rows strided: a view
    weight = torch.randn(hidden, width, generator=gen, dtype=dtype) / width**0.5
    d_out = torch.randn(*leading, hidden, generator=gen, dtype=dtype)
    return h, weight, d_out


def grads(fn, h, weight, d_out):
    h, weight = h.detach().requires_grad_(), weight.detach().requires_grad_()
    out = fn(h, weight)
    return (out, *torch.autograd.grad(out, (h, weight), d_out))


@pytest.mark.parametrize("leading, width, hidden", [((7, 3), 24, 10), ((5,), 1, 4), ((2, 3, 4), 37, 16)])
def test_op_equals_the_plain_formula_in_fp64(leading, width, hidden):
    h, weight, d_out = draw(leading, width, hidden)
    for got, want in zip(grads(swiglu_op.swiglu_linear, h, weight, d_out), grads(plain, h, weight, d_out)):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_residual_form_adds_the_residual_and_passes_its_gradient():
    """out = residual + (SiLU(gate) ⊙ up) Wᵀ with the residual as the GEMM's C; d residual = d out."""
    h, weight, d_out = draw((7, 3), 24, 10)
    residual = torch.randn_like(d_out)
    leaves = [t.detach().requires_grad_() for t in (h, weight, residual)]
    got = swiglu_op.swiglu_linear(*leaves)
    want_leaves = [t.detach().requires_grad_() for t in (h, weight, residual)]
    want = want_leaves[2] + plain(*want_leaves[:2])
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    for g, w in zip(torch.autograd.grad(got, leaves, d_out), torch.autograd.grad(want, want_leaves, d_out)):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"residual \(7, 3, 9\)"):
        swiglu_op.swiglu_linear(h, weight, residual[..., 1:])


def test_op_registrations_pass_opcheck():
    h, weight, d_out = draw((6, 2), 16, 8)
    torch.library.opcheck(swiglu_op.swiglu_linear_op, (h.detach().requires_grad_(), weight.requires_grad_(), None))
    torch.library.opcheck(swiglu_op.swiglu_linear_op, (h.detach(), weight.detach(), d_out.clone().requires_grad_()))
    torch.library.opcheck(swiglu_op.swiglu_linear_backward, (d_out, h.detach(), weight.detach()))


def test_backward_keeps_only_h_and_the_weight():
    """The product SiLU(gate) ⊙ up is formed again in the backward, not saved (the point of the op)."""
    h, weight, _ = draw((64, 2), 32, 8)
    saved = []
    h, weight = h.requires_grad_(), weight.requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        swiglu_op.swiglu_linear(h, weight)
    assert sorted(tuple(t.shape) for t in saved) == sorted([tuple(h.shape), tuple(weight.shape)])


def test_bad_inputs_name_the_shapes():
    h, weight, _ = draw((4,), 8, 4)
    with pytest.raises(ValueError, match=r"h must be \(\.\.\., 2W\).*h \(4, 15\)"):
        swiglu_op.swiglu_linear(h[..., 1:], weight)
    with pytest.raises(ValueError, match="cast one to the other"):
        swiglu_op.swiglu_linear(h, weight.float())


def test_mlp_equals_the_plain_formula(single_rank):
    """layers/mlp.py's ParallelSwiGLU (one rank) on the op, against W2(SiLU(W1 x) ⊙ W3 x) with its own weights."""
    from neox_metala.layers.mlp import ParallelSwiGLU
    from neox_metala.layers.settings import BlockSettings

    settings = BlockSettings(
        hidden_size=16, num_attention_heads=2, num_layers=2, intermediate_size=24, params_dtype=F64
    )
    mlp = ParallelSwiGLU(settings, layer_number=1)
    x = torch.randn(5, 3, 16, dtype=F64, requires_grad=True)
    out = mlp(x)
    w1, w3 = mlp.w1_w3.weight.chunk(2, dim=0)
    want = (F.silu(x @ w1.t()) * (x @ w3.t())) @ mlp.w2.weight.t()
    torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-12)
    d_out = torch.randn_like(out)
    weights = (x, mlp.w1_w3.weight, mlp.w2.weight)
    for got, expected in zip(torch.autograd.grad(out, weights, d_out), torch.autograd.grad(want, weights, d_out)):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    assert mlp.residual_in_gemm  # one rank: the block's residual goes into the down projection's GEMM
    residual = torch.randn_like(want)
    torch.testing.assert_close(mlp(x, residual=residual), residual + want, rtol=1e-12, atol=1e-12)

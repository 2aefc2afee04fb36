"""The SwiGLU activation's Triton kernels (ops/swiglu_kernels.py, launched by ops/swiglu_op.py) against the fp64
formula: y = SiLU(gate) ⊙ up, and in the backward dh = [d gate | d up] and y formed again (bitwise the forward's),
for fp32 inputs (tight) and bf16 / fp16 (one rounding of fp32 math), at widths that leave partial blocks, rows as
strided views, and small blocks so that several programs cover both axes. On a GPU also the model's shape and the
op's autograd (GEMMs around the kernels) against the plain formula.

Runs natively on a CUDA GPU, or on the CPU through the Triton interpreter when TRITON_INTERPRET=1 is set before the
run; skips otherwise (the project's CPU suite)."""

import pytest
import torch
import torch.nn.functional as F
import triton_runs
from triton_runs import relative_error

from neox_metala.ops import swiglu_op

pytestmark = triton_runs.MARKS
DEVICE = triton_runs.DEVICE
F64 = torch.float64
BOUNDS = triton_runs.ONE_ROUNDING
SMALL = (4, 16, 1)  # rows, channels, warps: several programs along both axes at the interpreter's shapes


def draw(rows, width, dtype, seed=0):
    """h (rows, 2W) as a strided view (rows of a wider tensor), dy (rows, W)."""
    gen = torch.Generator().manual_seed(seed)
    h = (torch.randn(rows, 2 * width + 5, generator=gen) * 3.0)[:, 5:]
    dy = torch.randn(rows, width, generator=gen)
    return h.to(DEVICE, dtype), dy.to(DEVICE, dtype)


def exact(h, dy):
    """fp64 y, dh of the formula through autograd, on the kernels' (rounded) inputs."""
    h64 = h.double().requires_grad_()
    gate, up = h64.chunk(2, dim=-1)
    y = F.silu(gate) * up
    (dh,) = torch.autograd.grad(y, h64, dy.double())
    return y.detach(), dh


def check(rows, width, dtype, blocks):
    h, dy = draw(rows, width, dtype)
    y_exact, dh_exact = exact(h, dy)
    y = swiglu_op.swiglu_forward_triton(h, blocks)
    dh, y_again = swiglu_op.swiglu_backward_triton(h, dy, blocks)
    assert y.shape == (rows, width) and dh.shape == (rows, 2 * width)
    assert torch.equal(y, y_again)  # the backward's y is the forward's, bit for bit
    errors = {"y": relative_error(y, y_exact), "dh": relative_error(dh, dh_exact)}
    assert max(errors.values()) < BOUNDS[dtype], errors


@pytest.mark.parametrize("rows, width", [(13, 37), (1, 16), (9, 40)])
def test_kernels_fp32_small_blocks(rows, width):
    check(rows, width, torch.float32, SMALL)


def test_default_blocks_fp32():
    check(11, 300, torch.float32, swiglu_op.FORWARD_BLOCKS)  # a partial block along both axes


GPU_ONLY = pytest.mark.skipif(DEVICE != "cuda", reason="bf16 and larger shapes: GPU only")


@GPU_ONLY
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=["bf16", "fp16", "fp32"])
def test_kernels_within_bounds_on_the_gpu(dtype):
    check(1000, 700, dtype, swiglu_op.FORWARD_BLOCKS)
    check(1000, 700, dtype, swiglu_op.BACKWARD_BLOCKS)


@GPU_ONLY
def test_model_shape_bf16():
    check(16384, 2816, torch.bfloat16, swiglu_op.BACKWARD_BLOCKS)


@GPU_ONLY
def test_op_autograd_equals_the_plain_formula():
    """swiglu_linear on CUDA (kernels + GEMMs) against (SiLU(gate) ⊙ up) Wᵀ in fp64, bf16 inputs."""
    h, _ = draw(2048, 352, torch.bfloat16)
    gen = torch.Generator().manual_seed(1)
    weight = (torch.randn(128, 352, generator=gen) / 352**0.5).to(DEVICE, torch.bfloat16)
    d_out = torch.randn(2048, 128, generator=gen).to(DEVICE, torch.bfloat16)
    leaves = [h.detach().requires_grad_(), weight.requires_grad_()]
    out = swiglu_op.swiglu_linear(*leaves)
    got = (out, *torch.autograd.grad(out, leaves, d_out))
    exact_leaves = [t.detach().double().requires_grad_() for t in leaves]
    gate, up = exact_leaves[0].chunk(2, dim=-1)
    want = (F.silu(gate) * up) @ exact_leaves[1].t()
    expected = (want, *torch.autograd.grad(want, exact_leaves, d_out.double()))
    errors = [relative_error(a, b) for a, b in zip(got, expected)]
    assert max(errors) < 2**-7, errors  # bf16 GEMM inputs and outputs: a few roundings

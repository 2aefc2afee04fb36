"""The RMS norm's Triton kernels (ops/rms_norm_kernels.py, launched by ops/rms_norm_op.py) against the fp64
formula: forward h = x + residual and y = h / rms(h) · w, backward dh = dh_in + J(h)ᵀ dy and dw = Σ dy ĥ, with and
without the residual, its gradient and the scale, for fp32 inputs (tight) and bf16 / fp16 (one rounding of fp32
math), at widths that are not powers of two and row counts that leave each backward program several tiles and a
partial last tile. On a GPU also the model's shape and the block's op under autograd.

Runs natively on a CUDA GPU, or on the CPU through the Triton interpreter when TRITON_INTERPRET=1 is set before the
run; skips otherwise (the project's CPU suite)."""

import pytest
import torch
import triton_runs

from neox_metala.ops import rms_norm_op

pytestmark = triton_runs.MARKS
DEVICE = triton_runs.DEVICE
F64 = torch.float64
EPS = 1e-6
# norm-relative: fp32 math, each result rounded once to the inputs' dtype (dw: a sum over rows in fp32)
BOUNDS = {torch.float32: 1e-6, torch.bfloat16: 2**-8, torch.float16: 2**-11}


def draw(rows, width, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x, residual, dh_in, dy = (
        torch.randn(4, rows, width, generator=gen) * torch.tensor([3.0, 1.0, 1.0, 1.0])[:, None, None]
    )
    weight = 1 + 0.3 * torch.randn(width, generator=gen)
    return [t.to(DEVICE, dtype) for t in (x, residual, dh_in, dy, weight)]


def exact(x, residual, dh_in, dy, weight):
    """fp64 (h, y, dh, dw) of the formula through autograd, on the kernels' rounded sum h."""
    h = x if residual is None else (x.double() + residual.double()).to(x.dtype)
    h64 = h.double().requires_grad_()
    w64 = None if weight is None else weight.double().requires_grad_()
    y = h64 * torch.rsqrt(h64.pow(2).mean(-1, keepdim=True) + EPS)
    if w64 is not None:
        y = y * w64
    grads = torch.autograd.grad(y, [h64] + ([w64] if w64 is not None else []), dy.double())
    dh = grads[0] + (0 if dh_in is None else dh_in.double())
    return h, y.detach(), dh, grads[1] if w64 is not None else None


def error(got, want):
    return ((got.double() - want).norm() / want.norm()).item()


def check(rows, width, dtype, residual=True, gradient_in=True, scaled=True):
    x, res, dh_in, dy, weight = draw(rows, width, dtype)
    res, dh_in, weight = (res if residual else None), (dh_in if gradient_in else None), (weight if scaled else None)
    h_want, y_want, dh_want, dw_want = exact(x, res, dh_in, dy, weight)
    h, y = rms_norm_op.forward_triton(x, res, weight, EPS)
    dh, dw = rms_norm_op.backward_triton(h, dy, dh_in, weight, EPS)
    assert torch.equal(h, h_want.reshape(h.shape))  # the sum rounded once, as the separate add
    errors = {"y": error(y, y_want), "dh": error(dh, dh_want)}
    if scaled:
        assert dw.dtype == weight.dtype and dw.shape == (width,)
        errors["dw"] = error(dw, dw_want)
    else:
        assert dw is None
    assert max(errors.values()) < BOUNDS[dtype], errors


@pytest.mark.parametrize("rows, width", [(300, 37), (7, 100), (1, 1)])
def test_kernels_fp32(rows, width):
    check(rows, width, torch.float32)


@pytest.mark.parametrize(
    "residual, gradient_in, scaled", [(False, False, True), (True, False, False), (False, True, False)]
)
def test_kernels_without_residual_gradient_or_scale(residual, gradient_in, scaled):
    check(130, 48, torch.float32, residual, gradient_in, scaled)


def test_ops_run_the_kernels_under_autograd():
    x, res, dh_in, dy, weight = draw(70, 40, torch.float32, seed=1)
    inputs = [t.detach().requires_grad_() for t in (x, res, weight)]
    h, y = rms_norm_op.add_rms_norm(*inputs, EPS)
    got = torch.autograd.grad((h, y), inputs, (dh_in, dy))
    h_want, _, dh_want, dw_want = exact(x, res, dh_in, dy, weight)
    for g, want in zip(got, (dh_want, dh_want, dw_want)):
        assert error(g, want) < BOUNDS[torch.float32]


GPU_ONLY = pytest.mark.skipif(DEVICE != "cuda", reason="half precision and larger shapes: GPU only")


@GPU_ONLY
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=["bf16", "fp16", "fp32"])
@pytest.mark.parametrize("width", [1024, 2560, 700])
def test_kernels_within_bounds_on_the_gpu(dtype, width):
    check(3000, width, dtype)
    check(3000, width, dtype, residual=False, gradient_in=False, scaled=False)


@GPU_ONLY
def test_model_shape_bf16():
    check(16384, 1024, torch.bfloat16)

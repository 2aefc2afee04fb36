"""The partial-sum reduction (ops/partial_sums.py) against an fp64 sum of the same fp32 partials: one or two outputs
in fp32, bf16 or fp16, a zero-width split on either side, rows that are not a multiple of the kernel's row block,
columns that leave a partial column block, and strided rows (a column slice of a wider buffer); the same result on
a second launch (a fixed summation order); and the PyTorch path equal to partial.sum(0).to(dtype).

The kernel tests run natively on a CUDA GPU, or on the CPU through the Triton interpreter when TRITON_INTERPRET=1 is
set before the run; they skip otherwise (the project's CPU suite), where the PyTorch path and argument checks run.
"""

import pytest
import torch
import triton_runs

from neox_metala.ops import partial_sums

DEVICE = triton_runs.DEVICE
F32, BF16, F16 = torch.float32, torch.bfloat16, torch.float16
# unit roundoff of rounding to nearest, and half of fp16's subnormal spacing (the smallest sums in fp16). Triton 3.6's
# interpreter casts fp32 to bf16 by truncation (a GPU rounds to nearest even): up to one ulp there.
UNIT = {F32: 2**-24, BF16: 2**-7 if triton_runs.INTERPRETED else 2**-8, F16: 2**-11}
TINY = {F32: 0.0, BF16: 0.0, F16: 2**-25}


def kernel_test(fn):
    for mark in triton_runs.MARKS:
        fn = mark(fn)
    return fn


def draw(rows, columns, seed=0, row_stride=None):
    """(rows, columns) fp32 partials on DEVICE, of mixed signs and sizes; with row_stride, the first columns of a
    wider buffer."""
    gen = torch.Generator().manual_seed(seed)
    wide = torch.randn(rows, row_stride or columns, generator=gen) * torch.rand(1, row_stride or columns, generator=gen)
    return (wide * 8).to(DEVICE)[:, :columns]


def check(partial, splits, dtypes):
    """Each output within its rounding of the fp64 sum, plus the fp32 sum's bound: ≤ rows · 2⁻²⁴ · Σ|partial| (the
    factor 2 covers the output's rounding of that error)."""
    outputs = partial_sums.sum_partials(partial, dtypes, splits)
    want, scale = partial.double().sum(0), partial.double().abs().sum(0)
    start = 0
    for out, width, dtype in zip(outputs, splits, dtypes):
        assert out.shape == (width,) and out.dtype == dtype and out.device == partial.device
        exact, bound_scale = want[start : start + width], scale[start : start + width]
        error = (out.double() - exact).abs()
        bound = UNIT[dtype] * exact.abs() + 2 * partial.shape[0] * 2**-24 * bound_scale + TINY[dtype]
        assert (error <= bound).all(), f"{dtype} columns {start}..{start + width}: worst {(error / bound).max()}"
        start += width
    return outputs


CASES = [
    (1, 1, (1,)),
    (7, 100, (0, 100)),  # a zero-width first output
    (128, 1536, (512, 1024)),  # the epilogue's: d aug_balance (H·K) | d gate_bias (H·V)
    (1000, 3000, (3000, 0)),  # a zero-width second output
    (7, 1536, (1536,)),
    (128, 100, (37, 63)),  # the split inside a column block
    (1000, 1, (1,)),
    (128, 3000, (3000,)),
]
DTYPES = [(F32, F32), (BF16, F32), (F16, BF16)]


@kernel_test
@pytest.mark.parametrize(
    "rows, columns, splits", CASES, ids=[f"R{r}-C{c}-{'_'.join(map(str, s))}" for r, c, s in CASES]
)
@pytest.mark.parametrize("dtypes", DTYPES, ids=["fp32-fp32", "bf16-fp32", "fp16-bf16"])
def test_kernel_sums_equal_fp64(rows, columns, splits, dtypes):
    check(draw(rows, columns), splits, dtypes[: len(splits)])


@kernel_test
def test_kernel_strided_rows():
    """A column slice of a wider buffer (the epilogue's d aug_balance part alone): rows of stride 700."""
    partial = draw(45, 600, row_stride=700)
    assert partial.stride() == (700, 1)
    check(partial, (600,), (BF16,))


@kernel_test
def test_kernel_is_deterministic_and_close_to_torch():
    partial = draw(300, 1000, seed=3)
    first = partial_sums.sum_partials(partial, (F32, F32), (400, 600))
    second = partial_sums.sum_partials(partial, (F32, F32), (400, 600))
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    # torch's tree reduction sums in another order: equal within the fp32 sums' error bound
    bound = 2 * partial.shape[0] * 2**-24 * partial.abs().sum(0)
    assert ((torch.cat(first) - partial.sum(0)).abs() <= bound).all()


@kernel_test
@pytest.mark.skipif(DEVICE != "cuda", reason="a launch through the direct path: GPU only")
def test_gpu_launches_at_model_sizes():
    """The conv's (128 rows × 1024·4 columns) and the epilogue's partials, twice each (the second launch through
    triton_launch's direct path): bitwise equal results, within bounds."""
    for rows, columns, splits, dtypes in [(128, 4096, (4096,), (BF16,)), (128, 1536, (512, 1024), (F32, BF16))]:
        partial = draw(rows, columns, seed=5)
        first = check(partial, splits, dtypes)
        assert all(torch.equal(a, b) for a, b in zip(first, check(partial, splits, dtypes)))


@pytest.mark.parametrize("dtype", [F32, BF16, F16, torch.float64], ids=["fp32", "bf16", "fp16", "fp64"])
def test_torch_path_equals_sum_then_cast(dtype, monkeypatch):
    """On CPU tensors without the interpreter: exactly partial.sum(0).to(dtype) per split, fresh tensors."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    gen = torch.Generator().manual_seed(1)
    partial = torch.randn(33, 70, generator=gen)
    d_aug, d_bias = partial_sums.sum_partials(partial, (dtype, F32), (30, 40))
    sums = partial.sum(0)
    assert torch.equal(d_aug, sums[:30].to(dtype)) and torch.equal(d_bias, sums[30:])
    assert d_aug.data_ptr() != d_bias.data_ptr() and d_aug._base is None and d_bias._base is None
    (whole,) = partial_sums.sum_partials(partial, (dtype,))
    assert torch.equal(whole, sums.to(dtype))
    empty, rest = partial_sums.sum_partials(partial, (dtype, dtype), (0, 70))
    assert empty.shape == (0,) and torch.equal(rest, sums.to(dtype))


@pytest.mark.parametrize(
    "shape, splits, dtypes, match",
    [
        ((4, 10), (3, 3), (F32, F32), "summing to the 10 columns"),
        ((4, 10), (3, 7), (F32,), "a dtype each"),
        ((4, 10), (3, 3, 4), (F32, F32, F32), "one or two widths"),
        ((4, 10), (-1, 11), (F32, F32), "widths ≥ 0"),
        ((40,), None, (F32,), r"partial must be \(rows, columns\)"),
    ],
    ids=["short-splits", "dtype-count", "three-splits", "negative", "1-d"],
)
def test_bad_arguments_are_refused(shape, splits, dtypes, match):
    with pytest.raises(ValueError, match=match):
        partial_sums.sum_partials(torch.zeros(shape), dtypes, splits)

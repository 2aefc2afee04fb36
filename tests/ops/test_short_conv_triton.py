"""The short convolution's Triton kernels (ops/short_conv_kernels.py, launched by ops/short_conv_op.py) against
fp64 references: y, dx and dweight through the step-by-step reference's autograd, and each kernel alone against
conv_forward_torch / conv_backward_torch in fp64 at the sizes where its halos matter: T of 1-5 tokens, T not a
multiple of the token block, several spans per row of several steps each (the weight gradient's partials; dx of a
span's last W-1 tokens needs dpre past its end, pre of its first tokens x before its start), token blocks of 1
(the window reaches back over three steps), C not a multiple of the channel block, a strided (seq,
batch)-transposed x and dy, widths 1-4, and bf16 and fp16 with y and dx rounded once from their fp32 values.

Runs natively on a CUDA GPU (bf16 as well, and the 380M model's shape), or on the CPU through the Triton
interpreter when TRITON_INTERPRET=1 is set before the run (small shapes). Skips without triton, and on a CPU
without the interpreter (the project's CPU suite).
"""

import pytest
import torch
import torch.nn.functional as F
import triton_runs

from neox_metala.ops import reference

pytestmark = triton_runs.MARKS
DEVICE = triton_runs.DEVICE
F64 = torch.float64
BF16, F16 = torch.bfloat16, torch.float16
BOUNDS = {torch.float32: 1e-6, BF16: 1e-2, F16: 3e-3}  # norm-relative
# Many blocks and spans at small shapes (spans of 4 tokens in backward, 6 in forward): each launcher's keywords.
SMALL_BLOCKS = dict(forward=dict(blocks=(3, 16, 1), steps=2), backward=dict(blocks=(2, 16, 1), steps=2))
# Rounding to dx's dtype, relative: half an ulp, or a whole one in Triton 3.6's interpreter, which casts fp32 to
# bf16 by truncation. FP32_SUM: dx's fp32 sum (sigmoid's approximate exp2 and reciprocal included), relative to
# the sum of its terms' magnitudes.
UNIT = {torch.float32: 2**-24, BF16: 2**-7 if triton_runs.INTERPRETED else 2**-8, F16: 2**-11}
FP32_SUM = 2**-19


def exact(x, weight, d_out):
    """fp64 y, dx, dweight of the step-by-step reference, on the kernel's (rounded) inputs."""
    leaves = [x.double().requires_grad_(), weight.double().requires_grad_()]
    y, _ = reference.short_conv_reference(*leaves)
    return (y, *torch.autograd.grad(y, leaves, d_out.double()))


def draw(dtype, batch, seq, channels, width=4, seq_first=False, seed=0):
    """x and dy (B, T, C) in dtype on DEVICE, as (seq, batch) transposes with seq_first (the layer's: strided
    views, not copies), and an fp32 weight (C, W)."""
    gen = torch.Generator().manual_seed(seed)
    shape = (seq, batch, channels) if seq_first else (batch, seq, channels)
    x, d_out = (torch.randn(*shape, generator=gen).to(DEVICE, dtype) for _ in range(2))
    if seq_first:
        x, d_out = x.transpose(0, 1), d_out.transpose(0, 1)
    return x, (torch.randn(channels, width, generator=gen) * 0.5).to(DEVICE), d_out


def check(dtype, batch, seq, channels, width=4, seq_first=False, blocks=None, seed=0):
    from neox_metala.ops import short_conv_op

    x, weight, d_out = draw(dtype, batch, seq, channels, width, seq_first, seed)
    blocks = blocks or dict(forward={}, backward={})
    y = short_conv_op.conv_forward_triton(x, weight, **blocks["forward"])
    dx, dweight = short_conv_op.conv_backward_triton(x, weight, d_out, **blocks["backward"])
    assert (y.dtype, dx.dtype, dweight.dtype) == (dtype, dtype, torch.float32)
    errors = {}
    for name, got, want in zip(("y", "dx", "dweight"), (y, dx, dweight), exact(x, weight, d_out)):
        assert torch.isfinite(got).all(), name
        errors[name] = ((got.double() - want).norm() / want.norm()).item()
    print(f"TRITON-CONV {dtype} B{batch} T{seq} C{channels} W{width}:", errors)
    assert all(error <= BOUNDS[dtype] for error in errors.values()), errors


def pre_magnitudes(x, weight):
    """fp64 |x[t - (W-1) + j]| for each tap j, and Σ_j |w[c, j]| · those: the size of what pre sums."""
    seq, width = x.shape[1], weight.shape[1]
    taps = [F.pad(x.double().abs(), (0, 0, width - 1 - j, 0))[:, :seq] for j in range(width)]
    return taps, sum(tap * weight.double()[:, j].abs() for j, tap in enumerate(taps))


def magnitudes(x, weight, d_out):
    """fp64 sizes of what dx and dweight sum, which bound the error of their fp32 sums: with |dpre| ≤ |dy| · (1 + Σ_j
    |w_j · x_j|) (as is its error over pre's: |SiLU'| ≤ 1.1 and |SiLU''| ≤ 0.5), Σ_j |w[c, j]| · that at t + (W-1) - j
    for dx, and Σ_{b,t} that · |x[t - (W-1) + j]| for dweight."""
    seq, width = x.shape[1], weight.shape[1]
    taps, pre = pre_magnitudes(x, weight)
    d_pre = d_out.double().abs() * (1 + pre)
    later = F.pad(d_pre, (0, 0, 0, width - 1))
    dx = sum(weight.double()[:, j].abs() * later[:, width - 1 - j : width - 1 - j + seq] for j in range(width))
    return dx, torch.stack([(d_pre * tap).sum((0, 1)) for tap in taps], dim=-1)


def check_forward(dtype, batch, seq, channels, width=4, seq_first=False, blocks=(2, 16, 1), steps=2, stages=1):
    """The forward kernel at these blocks against conv_forward_torch in fp64, element by element: y within one
    rounding to its dtype of its fp32 value (pre's sum and SiLU: |SiLU'| ≤ 1.1 carries pre's error over)."""
    from neox_metala.ops import short_conv_op

    x, weight, _ = draw(dtype, batch, seq, channels, width, seq_first)
    y = short_conv_op.conv_forward_triton(x, weight, blocks, steps, stages)
    assert y.shape == x.shape and y.dtype == dtype and y.is_contiguous()
    want = short_conv_op.conv_forward_torch(x.double(), weight.double())
    scale = 1.1 * pre_magnitudes(x, weight)[1]
    error = (y.double() - want).abs() / (UNIT[dtype] * want.abs() + FP32_SUM * scale + 1e-300)
    print(f"CONV-FORWARD {dtype} B{batch} T{seq} C{channels} W{width} {blocks} x{steps}: y {error.max():.2f} of bound")
    assert error.max() <= 1, f"y rows {sorted(set(torch.nonzero(error > 1)[:, 1].tolist()))}"


# (batch, seq, channels, width, seq_first, blocks, steps) of both kernels' span tests
SPANS_AND_WIDTHS = pytest.mark.parametrize(
    "batch, seq, channels, width, seq_first, blocks, steps",
    [
        (1, 13, 16, 4, False, (2, 16, 1), 2),  # one whole channel block
        (2, 13, 40, 4, False, (2, 16, 1), 2),  # three channel blocks, the last 8 wide
        (1, 11, 20, 4, True, (1, 16, 1), 3),  # the windows reach back over three steps
        (2, 37, 70, 4, True, (4, 32, 1), 3),  # spans of 12 tokens, the last one 1 token long
        (1, 37, 20, 4, False, (8, 16, 1), 1),  # one step per span
        (1, 19, 130, 4, True, None, None),  # ops/short_conv_op.py's blocks and steps
        (2, 13, 20, 3, True, (2, 16, 1), 2),
        (2, 13, 20, 2, False, (2, 16, 1), 2),
        (1, 9, 20, 1, False, (2, 16, 1), 2),  # no window at all
    ],
    ids=["C16", "C40", "BT1", "T37-C70", "one-step", "defaults", "W3", "W2", "W1"],
)


@pytest.mark.parametrize("seq", [1, 2, 3, 5, 13], ids=lambda seq: f"T{seq}")
def test_forward_at_short_and_awkward_lengths(seq):
    """Spans of 2 steps of 2 tokens: T=5 and 13 end inside a span's second step; T=13 has 4 spans."""
    check_forward(torch.float32, 2, seq, 20, seq_first=True)


@SPANS_AND_WIDTHS
def test_forward_blocks_spans_and_widths(batch, seq, channels, width, seq_first, blocks, steps):
    from neox_metala.ops import short_conv_op

    blocks, steps = blocks or short_conv_op.FORWARD_BLOCKS, steps or short_conv_op.FORWARD_STEPS
    check_forward(torch.float32, batch, seq, channels, width, seq_first, blocks, steps)


@pytest.mark.parametrize("dtype", [BF16, F16], ids=["bf16", "fp16"])
def test_forward_rounds_y_once_in_low_precision(dtype):
    check_forward(dtype, 2, 13, 20, seq_first=True)


def check_backward(dtype, batch, seq, channels, width=4, seq_first=False, blocks=(2, 16, 1), steps=2, stages=1):
    """The backward kernel at these blocks against conv_backward_torch in fp64, element by element: dx within one
    rounding to its dtype of its fp32 sum (so dpre is not rounded on its way), dweight within its fp32 sum."""
    from neox_metala.ops import short_conv_op

    x, weight, d_out = draw(dtype, batch, seq, channels, width, seq_first)
    dx, dweight = short_conv_op.conv_backward_triton(x, weight, d_out, blocks, steps, stages)
    assert dx.shape == x.shape and dx.dtype == dtype and dx.is_contiguous() and dweight.dtype == weight.dtype
    want_dx, want_dweight = short_conv_op.conv_backward_torch(x.double(), weight.double(), d_out.double())
    dx_scale, dweight_scale = magnitudes(x, weight, d_out)
    dx_error = (dx.double() - want_dx).abs() / (UNIT[dtype] * want_dx.abs() + FP32_SUM * dx_scale + 1e-300)
    dweight_error = (dweight.double() - want_dweight).abs() / (FP32_SUM * dweight_scale + 1e-300)
    print(f"CONV-BACKWARD {dtype} B{batch} T{seq} C{channels} W{width} {blocks} x{steps}:", end=" ")
    print(f"dx {dx_error.max():.2f}, dweight {dweight_error.max():.2f} of their bounds")
    assert dx_error.max() <= 1, f"dx rows {sorted(set(torch.nonzero(dx_error > 1)[:, 1].tolist()))}"
    assert dweight_error.max() <= 1, dweight_error


@pytest.mark.parametrize("seq", [1, 2, 3, 5, 13], ids=lambda seq: f"T{seq}")
def test_backward_at_short_and_awkward_lengths(seq):
    """Spans of 2 steps of 2 tokens: T=5 and 13 end inside a span's second step, with dpre 0 from T on."""
    check_backward(torch.float32, 2, seq, 20, seq_first=True)


@SPANS_AND_WIDTHS
def test_backward_blocks_spans_and_widths(batch, seq, channels, width, seq_first, blocks, steps):
    from neox_metala.ops import short_conv_op

    blocks, steps = blocks or short_conv_op.BACKWARD_BLOCKS, steps or short_conv_op.BACKWARD_STEPS
    check_backward(torch.float32, batch, seq, channels, width, seq_first, blocks, steps)


@pytest.mark.parametrize("dtype", [BF16, F16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("seq", [5, 13], ids=lambda seq: f"T{seq}")
def test_backward_rounds_dx_once_in_low_precision(dtype, seq):
    check_backward(dtype, 2, seq, 20, seq_first=True)


@pytest.mark.parametrize(
    "batch, seq, channels, width, seq_first",
    [
        (2, 1, 20, 4, False),
        (2, 3, 20, 4, False),
        (1, 37, 20, 4, False),  # 7 forward spans of 6 tokens, 10 backward spans of 4, the last ones 1 long
        (2, 37, 40, 4, True),
        (1, 21, 18, 3, False),
        (1, 9, 16, 2, False),
    ],
    ids=["T1", "T3", "T37-C20", "T37-C40-strided", "T21-W3", "T9-W2"],
)
def test_kernels_fp32_equal_the_reference(batch, seq, channels, width, seq_first):
    check(torch.float32, batch, seq, channels, width, seq_first, blocks=SMALL_BLOCKS)


def test_default_blocks_fp32():
    check(torch.float32, 1, 19, 130)  # ops/short_conv_op.py's blocks; C = 130 leaves a partial channel block


GPU_ONLY = pytest.mark.skipif(DEVICE != "cuda", reason="larger shapes: GPU only")


@GPU_ONLY
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=["bf16", "fp16", "fp32"])
@pytest.mark.parametrize("seq_first", [False, True], ids=["contiguous", "strided"])
def test_kernels_within_bounds_on_the_gpu(dtype, seq_first):
    check(dtype, 3, 1000, 1000, seq_first=seq_first)


@GPU_ONLY
@pytest.mark.parametrize("stages", [2, 3])
def test_pipelined_step_loop_bf16(stages):
    """Both kernels' step loops at 2-3 software-pipeline stages (cp.async loads of later steps), at bench/conv.py's
    candidate blocks with 2 or 4 channels per thread."""
    forward = (((4, 256, 2), 32), ((4, 256, 2), 64), ((8, 256, 2), 16), ((8, 128, 2), 16), ((8, 512, 4), 16))
    for blocks, steps in forward:
        check_forward(BF16, 3, 1000, 600, seq_first=True, blocks=blocks, steps=steps, stages=stages)
    for blocks, steps in (((8, 256, 2), 16), ((4, 256, 2), 32), ((8, 128, 2), 16), ((8, 512, 4), 16)):
        check_backward(BF16, 3, 1000, 600, seq_first=True, blocks=blocks, steps=steps, stages=stages)


@GPU_ONLY
def test_model_shape_bf16():
    check(torch.bfloat16, 8, 2048, 1024, seq_first=True)


@GPU_ONLY
def test_custom_op_autograd_runs_the_kernels():
    """ops/short_conv_op.py on CUDA tensors: its autograd gives the launchers' own output and gradients."""
    from neox_metala.ops import short_conv_op

    gen = torch.Generator(device="cuda").manual_seed(1)
    x = torch.randn(2, 300, 256, device="cuda", generator=gen).bfloat16().requires_grad_()
    weight = torch.randn(256, 4, device="cuda", generator=gen).requires_grad_()
    d_out = torch.randn(2, 300, 256, device="cuda", generator=gen).bfloat16()
    y = short_conv_op.short_conv_silu(x, weight)
    dx, dweight = torch.autograd.grad(y, (x, weight), d_out)
    assert torch.equal(y, short_conv_op.conv_forward_triton(x, weight))
    expected_dx, expected_dweight = short_conv_op.conv_backward_triton(x, weight, d_out)
    assert torch.equal(dx, expected_dx) and torch.equal(dweight, expected_dweight)


def test_fp64_is_refused():
    from neox_metala.ops import short_conv_op

    x = torch.zeros(1, 4, 8, dtype=F64, device=DEVICE)
    with pytest.raises(ValueError, match="fp32, bf16 or fp16"):
        short_conv_op.conv_forward_triton(x, torch.zeros(8, 4, device=DEVICE))

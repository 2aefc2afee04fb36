"""The short convolution's Triton kernels (ops/short_conv_kernels.py, launched by ops/short_conv_op.py) against the
fp64 step-by-step reference: y, dx and dweight, T not a multiple of the token block, C not a multiple of the
channel block, a strided (seq, batch)-transposed x and dy, several backward spans per row of several steps each
(the weight gradient's partials), dx's window of later dpre reaching past the next token block, and widths other
than 4.

Runs natively on a CUDA GPU (bf16 as well, and the 380M model's shape), or on the CPU through the Triton
interpreter when TRITON_INTERPRET=1 is set before the run (small shapes). Skips without triton, and on a CPU
without the interpreter (the project's CPU suite).
"""

import pytest
import torch
import triton_runs

from neox_metala.ops import reference

pytestmark = triton_runs.MARKS
DEVICE = triton_runs.DEVICE
F64 = torch.float64
BOUNDS = {torch.float32: 1e-6, torch.bfloat16: 1e-2, torch.float16: 3e-3}  # norm-relative
# Many blocks and spans at small shapes; conv_backward_triton's keywords after "forward".
SMALL_BLOCKS = dict(forward=(16, 16, 4), pre_grad_blocks=(8, 16, 4), steps=2, input_grad_blocks=(8, 16, 4))


def exact(x, weight, d_out):
    """fp64 y, dx, dweight of the step-by-step reference, on the kernel's (rounded) inputs."""
    leaves = [x.double().requires_grad_(), weight.double().requires_grad_()]
    y, _ = reference.short_conv_reference(*leaves)
    return (y, *torch.autograd.grad(y, leaves, d_out.double()))


def check(dtype, batch, seq, channels, width=4, seq_first=False, blocks=None, seed=0):
    from neox_metala.ops import short_conv_op

    gen = torch.Generator().manual_seed(seed)
    shape = (seq, batch, channels) if seq_first else (batch, seq, channels)
    x, d_out = (torch.randn(*shape, generator=gen).to(DEVICE, dtype) for _ in range(2))
    if seq_first:  # the layer's transpose: a strided view, not a copy
        x, d_out = x.transpose(0, 1), d_out.transpose(0, 1)
    weight = (torch.randn(channels, width, generator=gen) * 0.5).to(DEVICE)
    backward = dict(blocks or {})
    forward = {"blocks": backward.pop("forward")} if blocks else {}
    y = short_conv_op.conv_forward_triton(x, weight, **forward)
    dx, dweight = short_conv_op.conv_backward_triton(x, weight, d_out, **backward)
    assert (y.dtype, dx.dtype, dweight.dtype) == (dtype, dtype, torch.float32)
    errors = {}
    for name, got, want in zip(("y", "dx", "dweight"), (y, dx, dweight), exact(x, weight, d_out)):
        assert torch.isfinite(got).all(), name
        errors[name] = ((got.double() - want).norm() / want.norm()).item()
    print(f"TRITON-CONV {dtype} B{batch} T{seq} C{channels} W{width}:", errors)
    assert all(error <= BOUNDS[dtype] for error in errors.values()), errors


@pytest.mark.parametrize(
    "batch, seq, channels, width, seq_first",
    [
        (2, 1, 20, 4, False),
        (2, 3, 20, 4, False),
        (1, 37, 20, 4, False),  # 5 token blocks of 8, 3 backward spans of 16 tokens, the last partial
        (2, 37, 40, 4, True),
        (1, 21, 18, 3, False),
        (1, 9, 16, 2, False),
    ],
    ids=["T1", "T3", "T37-C20", "T37-C40-strided", "T21-W3", "T9-W2"],
)
def test_kernels_fp32_equal_the_reference(batch, seq, channels, width, seq_first):
    check(torch.float32, batch, seq, channels, width, seq_first, blocks=SMALL_BLOCKS)


def test_dx_window_spans_several_token_blocks():
    """dx's token blocks of 2 with W=4: a token's later dpre lie in the next two blocks, the last ones past T."""
    check(torch.float32, 2, 11, 20, blocks={**SMALL_BLOCKS, "input_grad_blocks": (2, 16, 4)})


def test_weight_gradient_over_many_steps():
    """dpre programs of 4 steps of 4 tokens: T = 45 leaves the last span 13 tokens (its last step holds one), and
    C = 70 a channel block of 6; the per-tap dw tiles are summed over the steps and reduced once per program."""
    blocks = {**SMALL_BLOCKS, "pre_grad_blocks": (4, 32, 2), "steps": 4}
    check(torch.float32, 2, 45, 70, seq_first=True, blocks=blocks)


def test_default_blocks_fp32():
    check(torch.float32, 1, 19, 130)  # ops/short_conv_op.py's blocks; C = 130 leaves a partial channel block


GPU_ONLY = pytest.mark.skipif(DEVICE != "cuda", reason="bf16 and larger shapes: GPU only")


@GPU_ONLY
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=["bf16", "fp16", "fp32"])
@pytest.mark.parametrize("seq_first", [False, True], ids=["contiguous", "strided"])
def test_kernels_within_bounds_on_the_gpu(dtype, seq_first):
    check(dtype, 3, 1000, 1000, seq_first=seq_first)


@GPU_ONLY
@pytest.mark.parametrize("stages", [2, 3])
def test_pipelined_step_loop_bf16(stages):
    """The dpre kernel's step loop at 2-3 software-pipeline stages (cp.async loads of later steps)."""
    blocks = {"forward": (16, 128, 4), "pre_grad_blocks": (8, 64, 2), "stages": stages}
    check(torch.bfloat16, 3, 1000, 300, seq_first=True, blocks=blocks)


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

"""The one-launch bf16 -> fp32 gradient add (training/grad_accumulation.py) against torch's foreach add, and its
write mode (the first micro batch after a step) against a zero-fill then that add.

Runs on a GPU, and on CPU through the Triton interpreter (TRITON_INTERPRET=1, a venv with triton); skips
elsewhere. Bit-equality: both add the exactly converted bf16 values in fp32."""

from __future__ import annotations

import torch
import triton_runs

from neox_metala.training import grad_accumulation

pytestmark = triton_runs.MARKS


def test_one_launch_add_equals_the_foreach_add_on_views_of_one_flat_buffer():
    device = triton_runs.DEVICE
    generator = torch.Generator().manual_seed(0)
    # odd sizes straddle the kernel's blocks; views of one flat buffer as DeepSpeed's BF16 optimizer holds them
    shapes = [(1,), (4097,), (3, 5), (2 * grad_accumulation.BLOCK,), (100, 41), (1, 1), (5000,)]
    if device == "cuda":
        shapes += [(50304, 1024), (2816 * 2, 1024), (1024,)]
    numels = [torch.Size(s).numel() for s in shapes]
    flat = torch.randn(sum(numels) + 7, generator=generator).to(device)
    hp = [part.view(shape) for part, shape in zip(flat.split([*numels, 7]), shapes)]
    lp = [torch.randn(shape, generator=generator).to(device, torch.bfloat16) for shape in shapes]
    expected = [h.clone() for h in hp]
    torch._foreach_add_(expected, lp)
    padding = flat[-7:].clone()

    assert grad_accumulation._fits_kernel(hp, lp)
    grad_accumulation.add_into_fp32(hp, lp)
    grad_accumulation.add_into_fp32(hp, lp)  # a second micro batch: the cached address tables stay right
    torch._foreach_add_(expected, lp)
    assert not grad_accumulation._broken  # the kernel ran (the foreach fallback would give the same values)

    for got, want in zip(hp, expected):
        assert torch.equal(got, want)
    assert torch.equal(flat[-7:], padding)  # nothing written past the last gradient


def test_write_mode_equals_a_zero_fill_then_the_add_bit_for_bit():
    """Whatever the buffers held (here the last step's values, inf and NaN), never read; -0.0 gradient elements
    become +0.0 as in the add into zeros (torch.equal could not tell)."""
    device = triton_runs.DEVICE
    generator = torch.Generator().manual_seed(1)
    shapes = [(4097,), (3, 5), (1,), (2 * grad_accumulation.BLOCK + 1,)]
    numels = [torch.Size(s).numel() for s in shapes]
    flat = torch.randn(sum(numels) + 3, generator=generator).to(device)
    flat[:2] = torch.tensor([float("inf"), float("nan")])
    hp = [part.view(shape) for part, shape in zip(flat.split([*numels, 3]), shapes)]
    lp = [torch.randn(shape, generator=generator).to(device, torch.bfloat16) for shape in shapes]
    lp[0][:100] = -0.0
    lp[1][0] = -0.0
    expected = [torch.zeros_like(h) for h in hp]
    torch._foreach_add_(expected, lp)
    padding = flat[-3:].clone()

    assert grad_accumulation._fits_kernel(hp, lp)
    grad_accumulation.add_into_fp32(hp, lp, overwrite=True)
    assert not grad_accumulation._broken  # the kernel ran (the fallback zero-fills and adds: the same bits)
    for got, want in zip(hp, expected):
        assert torch.equal(got.view(torch.int32), want.view(torch.int32))
    assert torch.equal(flat[-3:], padding)

    grad_accumulation.add_into_fp32(hp, lp)  # the next micro batch adds again
    torch._foreach_add_(expected, lp)
    for got, want in zip(hp, expected):
        assert torch.equal(got.view(torch.int32), want.view(torch.int32))

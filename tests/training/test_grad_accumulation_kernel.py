"""The one-launch bf16 -> fp32 gradient add (training/grad_accumulation.py) against torch's foreach add.

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

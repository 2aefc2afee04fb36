"""The GPU fast path's autograd Function (ops.fused) with the pure-PyTorch core and eager elementwise steps,
against the step-by-step reference in fp64: checks its hand-derived backward formulas without a GPU."""

import pytest
import torch

from neox_metala.ops import reference
from neox_metala.ops.fused import EAGER_KERNELS, TorchCore, fused_token_mix

F64 = torch.float64


def rel_err(actual, expected):
    return ((actual - expected).norm() / expected.norm().clamp_min(1e-300)).item()


def reference_mix(projected, gate_bias, aug_balance, heads, seq_first):
    width = projected.shape[-1] // 3
    q, logits, v, gate = (
        t.unflatten(-1, (heads, -1)) for t in projected.split([width // 2, width // 2, width, width], dim=-1)
    )
    if aug_balance is None:  # no self-augmentation: the same as a zero balance, minus LN's removal of 0.5
        aug_balance = torch.zeros(width // 2, dtype=projected.dtype)
    y, _ = reference.token_mix_reference(q, logits, v, gate + gate_bias.view(heads, -1), aug_balance)
    y = y.flatten(-2)
    return y.transpose(0, 1) if seq_first else y


@pytest.mark.parametrize("with_aug", [True, False], ids=["self-aug", "no-self-aug"])
@pytest.mark.parametrize("seq_first", [True, False], ids=["seq-first", "batch-first"])
@pytest.mark.parametrize(
    "batch,seq,heads,head_k_dim,chunk",
    [
        pytest.param(2, 37, 3, 4, 8, id="B2-T37-H3"),
        pytest.param(1, 1, 2, 2, 16, id="T1"),
        pytest.param(3, 20, 1, 3, 16, id="B3-T20-odd-dk"),
    ],
)
def test_fused_function_equals_reference_with_grads(batch, seq, heads, head_k_dim, chunk, with_aug, seq_first):
    gen = torch.Generator().manual_seed(seq + heads)
    width = heads * 2 * head_k_dim
    projected = torch.randn(batch, seq, 3 * width, dtype=F64, generator=gen)
    projected[..., width // 2 : width] *= 3  # decay logits over a wide range
    projected.requires_grad_()
    gate_bias = torch.randn(width, dtype=F64, generator=gen, requires_grad=True)
    aug = torch.randn(width // 2, dtype=F64, generator=gen, requires_grad=True) if with_aug else None

    ours = fused_token_mix(
        projected,
        gate_bias,
        aug,
        heads,
        normalizer=16.0,
        eps=1e-5,
        seq_first=seq_first,
        core=TorchCore(chunk),
        kernels=EAGER_KERNELS,
    )
    expected = reference_mix(projected, gate_bias, aug, heads, seq_first)
    assert rel_err(ours, expected) <= 1e-10

    inputs = [t for t in (projected, gate_bias, aug) if t is not None]
    cotangent = torch.randn(ours.shape, dtype=F64, generator=gen)
    grads = torch.autograd.grad(ours, inputs, cotangent)
    expected_grads = torch.autograd.grad(expected, inputs, cotangent)
    for name, grad, expected_grad in zip(["projected", "gate_bias", "aug_balance"], grads, expected_grads):
        assert rel_err(grad, expected_grad) <= 1e-9, name

"""The fused GPU path (fla core + torch.compile-fused elementwise steps) against the fp64 reference, forward and
every gradient, at awkward sizes; and the compiled steps against their eager selves. Skips without a GPU."""

import pytest
import torch

from neox_metala import ops
from neox_metala.ops import fused

pytestmark = pytest.mark.gpu
TOLERANCE = {torch.bfloat16: 1e-2, torch.float16: 1e-2}


def rel_err(actual, expected):
    return ((actual.double() - expected).norm() / expected.norm().clamp_min(1e-300)).item()


def make_inputs(batch, seq, heads, head_k_dim, dtype, with_aug, seed=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    width = heads * 2 * head_k_dim
    projected = torch.randn(batch, seq, 3 * width, device="cuda", generator=gen)
    projected[..., width // 2 : width] *= 3
    gate_bias = torch.randn(width, device="cuda", generator=gen) * 0.5
    aug = torch.randn(width // 2, device="cuda", generator=gen) * 0.5 if with_aug else None
    fast = [t.to(dtype) if i == 0 else t for i, t in enumerate((projected, gate_bias, aug))]
    exact = [
        t.to(dtype).double() if i == 0 else (t.double() if t is not None else None)
        for i, t in enumerate((projected, gate_bias, aug))
    ]
    return (
        [t.requires_grad_() if t is not None else None for t in fast],
        [t.requires_grad_() if t is not None else None for t in exact],
    )


@pytest.mark.parametrize("with_aug", [True, False], ids=["self-aug", "no-self-aug"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize(
    "batch,seq,heads,head_k_dim",
    [
        pytest.param(2, 63, 4, 64, id="T63"),
        pytest.param(1, 1, 2, 64, id="T1"),
        pytest.param(2, 2048, 4, 64, id="T2048"),
        pytest.param(3, 100, 3, 64, id="B3-T100-H3"),
    ],
)
def test_fused_path_equals_reference(batch, seq, heads, head_k_dim, dtype, with_aug):
    fast, exact = make_inputs(batch, seq, heads, head_k_dim, dtype, with_aug)
    ours = ops.metala_mix(*fast, heads, seq_first=True)
    expected = ops.metala_mix(*exact, heads, ops.MetaLAOptions(backend="chunked"), seq_first=True)  # fp64, GPU
    name = f"fused-B{batch}-T{seq}-H{heads}-dk{head_k_dim}-{str(dtype)[6:]}-{'aug' if with_aug else 'noaug'}"
    err = rel_err(ours, expected)
    print(f"GPU-ERR {name}-output {err:.3e}")
    assert err <= TOLERANCE[dtype]
    # One cotangent, rounded to the kernel dtype once: the reference must see exactly what the kernels see.
    cotangent = torch.randn(ours.shape, device="cuda", generator=torch.Generator("cuda").manual_seed(1)).to(dtype)
    inputs = [t for t in fast if t is not None]
    grads = torch.autograd.grad(ours, inputs, cotangent)
    expected_grads = torch.autograd.grad(expected, [t for t in exact if t is not None], cotangent.double())
    for part, grad, expected_grad in zip(["projected", "gate_bias", "aug_balance"], grads, expected_grads):
        err = rel_err(grad, expected_grad)
        print(f"GPU-ERR {name}-grad-{part} {err:.3e}")
        assert err <= TOLERANCE[dtype], part


@pytest.mark.parametrize("dtype", [torch.bfloat16], ids=["bf16"])
def test_compiled_steps_equal_eager_steps(dtype):
    fast, _ = make_inputs(2, 130, 4, 64, dtype, True, seed=3)
    compiled = fused.fused_token_mix(*fast, 4, normalizer=16.0, eps=1e-5, seq_first=True)
    eager = fused.fused_token_mix(*fast, 4, normalizer=16.0, eps=1e-5, seq_first=True, kernels=fused.EAGER_KERNELS)
    err = rel_err(compiled, eager.double())
    print(f"GPU-ERR compiled-vs-eager-{str(dtype)[6:]} {err:.3e}")
    assert err <= 1e-2

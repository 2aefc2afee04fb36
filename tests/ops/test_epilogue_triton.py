"""The epilogue's Triton kernels (ops/epilogue_kernels.py, launched by ops/epilogue_op.py) against the fp64 reference
(ops/reference.py's augment_norm_gate_reference through autograd): y and the gradients of o, q, the decay logits, v,
the gate, gate_bias and aug_balance, for fp32 inputs (tight) and bf16 inputs (within bf16 rounding), at T = 1 and
37, V = 24 with K = 12, H = 3, the inputs as strided views of one (B, T, 3W) projection with dy a (seq, batch)
transpose and y laid out seq-first, several backward spans of several steps, without aug_balance or gate_bias.

Runs natively on a CUDA GPU (larger shapes and the custom op's autograd as well), or on the CPU through the Triton
interpreter when TRITON_INTERPRET=1 is set before the run. Skips without triton, and on a CPU without the
interpreter (the project's CPU suite).
"""

import pytest
import torch
import triton_runs

from neox_metala.ops import reference

pytestmark = triton_runs.MARKS
DEVICE = triton_runs.DEVICE
F64 = torch.float64
NORMALIZER = 16.0
# norm-relative bounds: fp32 math throughout, each result rounded once to the inputs' dtype: two of its units of
# rounding (bf16 2^-8, fp16 2^-11) for a few dozen elements
BOUNDS = {torch.float32: 1e-5, torch.bfloat16: 2**-7, torch.float16: 2**-10}
PARAMETER_BOUND = 1e-5  # d gate_bias and d aug_balance: fp32 sums of fp32 terms, in the parameters' fp32
NAMES = ("y", "do", "dq", "dx", "dv", "dg", "d_gate_bias", "d_aug_balance")
# (BT, warps) forward and backward, steps: several token blocks and spans at the interpreter's small shapes
SMALL = dict(forward=(4, 1), backward=(4, 1), steps=2)


def draw(dtype, batch, seq, heads, head_v_dim, projected=False, aug=True, bias=True, seed=0):
    """o, q, x, v, g, gate_bias, aug_balance, dy; q, x, v, g views of one (B, T, 3W) projection if `projected`, and
    dy then a (seq, batch) transpose. Decay logits spread over strong and weak decay, aug_balance large enough that
    the self-augmentation moves y."""
    gen = torch.Generator().manual_seed(seed)
    width, head_k_dim = heads * head_v_dim, head_v_dim // 2

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen) * scale).to(DEVICE, dtype)

    o = randn(batch, seq, heads, head_v_dim)
    if projected:
        widths = (width // 2, width // 2, width, width)
        proj = torch.randn(batch, seq, 3 * width, generator=gen)
        proj[..., width // 2 : width] *= 4.0  # spread the decay logits
        q, x, v, g = (t.unflatten(-1, (heads, -1)) for t in proj.to(DEVICE, dtype).split(widths, dim=-1))
        dy = randn(seq, batch, heads, head_v_dim).transpose(0, 1)
    else:
        q, v, g = (randn(batch, seq, heads, d) for d in (head_k_dim, head_v_dim, head_v_dim))
        x = randn(batch, seq, heads, head_k_dim, scale=4.0)
        dy = randn(batch, seq, heads, head_v_dim)
    gate_bias = (torch.randn(width, generator=gen) * 0.5).to(DEVICE) if bias else None
    aug_balance = (torch.randn(width // 2, generator=gen) * 4.0).to(DEVICE) if aug else None
    return o, q, x, v, g, gate_bias, aug_balance, dy


def exact(o, q, x, v, g, gate_bias, aug_balance, dy):
    """fp64 y and gradients (None where the input has none) of the reference, on the kernels' (rounded) inputs."""
    leaves = [t.double().requires_grad_() if t is not None else None for t in (o, q, x, v, g, gate_bias, aug_balance)]
    o_, q_, x_, v_, g_, b_, w_ = leaves
    gate = g_ if b_ is None else g_ + b_.view(g.shape[-2:])
    key = reference.decay_and_key_reference(x_, NORMALIZER)[1]
    if w_ is None:  # the reference always augments; without aug_balance: SiLU(gate) ⊙ LayerNorm(o)
        y = torch.nn.functional.silu(gate) * torch.nn.functional.layer_norm(o_, (o.shape[-1],), eps=1e-5)
    else:
        y = reference.augment_norm_gate_reference(o_, q_, key, v_, w_, gate)
    used = [t for t in leaves if t is not None]
    grads = iter(torch.autograd.grad(y, used, dy.double(), allow_unused=True))
    return y, *[next(grads) if t is not None else None for t in leaves]


def launch(inputs, seq_first, blocks):
    from neox_metala.ops import epilogue_op

    o, q, x, v, g, gate_bias, aug_balance, dy = inputs
    forward = {"blocks": blocks["forward"]} if blocks else {}
    backward = (
        {"blocks": blocks["backward"], "steps": blocks["steps"], "stages": blocks.get("stages", 1)} if blocks else {}
    )
    y, stats = epilogue_op.epilogue_forward_triton(
        o, q, x, v, g, gate_bias, aug_balance, NORMALIZER, seq_first=seq_first, **forward
    )
    grads = epilogue_op.epilogue_backward_triton(
        dy, o, q, x, v, g, gate_bias, aug_balance, stats, NORMALIZER, **backward
    )
    return y, *grads


def check(dtype, batch, seq, heads, head_v_dim, projected=False, aug=True, bias=True, blocks=None, seed=0):
    inputs = draw(dtype, batch, seq, heads, head_v_dim, projected, aug, bias, seed)
    got = launch(inputs, seq_first=projected, blocks=blocks)
    if projected:  # y laid out (T, B, H, V): what the out projection reads after the layer's transpose
        assert got[0].transpose(0, 1).is_contiguous()
    want = exact(*inputs)
    errors = {}
    for name, mine, theirs in zip(NAMES, got, want):
        if theirs is None:
            assert mine.numel() == 0, name
            continue
        assert mine.shape == theirs.shape and torch.isfinite(mine).all(), name
        errors[name] = ((mine.double() - theirs).norm() / theirs.norm()).item()
    print(f"TRITON-EPILOGUE {dtype} B{batch} T{seq} H{heads} V{head_v_dim} aug={aug} bias={bias}:", errors)
    for name, error in errors.items():
        bound = PARAMETER_BOUND if name.startswith("d_") else BOUNDS[dtype]
        assert error <= bound, (name, error, bound)
    assert got[0].dtype == inputs[4].dtype  # y in the gate's dtype, each gradient in its input's
    assert all(grad.dtype == like.dtype for grad, like in zip(got[1:6], inputs[:5]) if grad.numel())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize(
    "batch, seq, heads, head_v_dim, projected",
    [(2, 1, 2, 16, False), (2, 37, 3, 24, False), (2, 37, 3, 24, True), (1, 9, 1, 32, True)],
    ids=["T1", "T37-H3-V24", "T37-H3-V24-projected", "T9-H1-projected"],
)
def test_kernels_equal_the_reference(dtype, batch, seq, heads, head_v_dim, projected):
    check(dtype, batch, seq, heads, head_v_dim, projected, blocks=SMALL)


@pytest.mark.parametrize("aug, bias", [(False, True), (True, False), (False, False)], ids=["no-aug", "no-bias", "none"])
def test_without_aug_balance_or_gate_bias(aug, bias):
    check(torch.float32, 2, 13, 3, 24, projected=True, aug=aug, bias=bias, blocks=SMALL)


def test_default_blocks_fp32():
    check(torch.float32, 1, 45, 2, 24)  # ops/epilogue_op.py's blocks: T = 45 leaves a partial block and span


GPU_ONLY = pytest.mark.skipif(DEVICE != "cuda", reason="bf16 and larger shapes: GPU only")


@GPU_ONLY
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=["bf16", "fp16", "fp32"])
@pytest.mark.parametrize("projected", [False, True], ids=["contiguous", "projected"])
def test_kernels_within_bounds_on_the_gpu(dtype, projected):
    check(dtype, 3, 1000, 4, 96, projected)


@GPU_ONLY
def test_model_shape_bf16():
    check(torch.bfloat16, 8, 2048, 8, 128, projected=True)


@GPU_ONLY
@pytest.mark.parametrize(
    "backward, steps, stages",
    [((8, 8), 16, 1), ((8, 8), 16, 2), ((8, 8), 16, 3), ((8, 4), 16, 3), ((4, 4), 32, 3), ((4, 2), 16, 2),
     ((8, 4, 128), 16, 3), ((16, 8, 128), 16, 3)],
)  # fmt: skip
def test_pipelined_step_loop_bf16(backward, steps, stages):
    """The backward's step loop at 1-3 software-pipeline stages (cp.async loads of later steps), several spans, at
    the blocks bench/epilogue.py found fastest, and under a 128-register cap (a third block entry: maxnreg)."""
    blocks = dict(forward=(16, 4), backward=backward, steps=steps, stages=stages)
    check(torch.bfloat16, 3, 1000, 4, 96, projected=True, blocks=blocks)


@GPU_ONLY
def test_custom_op_autograd_runs_the_kernels():
    """ops/epilogue_op.py on CUDA tensors: its autograd gives the launchers' own output and gradients."""
    from neox_metala.ops import epilogue_op

    o, q, x, v, g, gate_bias, aug_balance, dy = draw(torch.bfloat16, 2, 300, 4, 64, projected=True)
    leaves = [t.detach().requires_grad_() for t in (o, q, x, v, g, gate_bias, aug_balance)]
    y = epilogue_op.augment_norm_gate_op(*leaves[:5], leaves[5], leaves[6], NORMALIZER, seq_first=True)
    grads = torch.autograd.grad(y, leaves, dy)
    expected = launch((o, q, x, v, g, gate_bias, aug_balance, dy), seq_first=True, blocks=None)
    assert torch.equal(y, expected[0])
    for got, want in zip(grads, expected[1:]):
        assert torch.equal(got, want.view(got.shape))


def test_fp64_is_refused():
    from neox_metala.ops import epilogue_op

    o = torch.zeros(1, 4, 2, 8, dtype=F64, device=DEVICE)
    with pytest.raises(ValueError, match="fp32, bf16 or fp16"):
        epilogue_op.epilogue_forward_triton(o, o[..., :4], o[..., :4], o, o, None, None, NORMALIZER)

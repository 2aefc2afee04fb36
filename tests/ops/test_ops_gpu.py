"""The CUDA fast path (fla kernels) against the float64 reference. Skips without a GPU.

Prints `GPU-ERR <case> <relative error>` lines (run with -s) so measured errors can be reported.
"""

import pytest
import torch

from neox_metala import ops
from neox_metala.ops import reference

pytestmark = pytest.mark.gpu
TOLERANCE = {torch.bfloat16: 1e-2, torch.float32: 1e-3}
FLA_FP32_TOLERANCE = 2e-3  # fla runs fp32 dot products in TF32 (10-bit mantissa): ~1e-3, reported, not hidden


def rel_err(actual, expected):
    return ((actual.double() - expected).norm() / expected.norm().clamp_min(1e-300)).item()


def report(case, err, dtype, tolerance=None):
    tolerance = tolerance or TOLERANCE[dtype]
    print(f"GPU-ERR {case} {err:.3e} (tolerance {tolerance:.0e})")
    assert err <= tolerance, case


def make_inputs(seq, dtype, with_state, batch=2, heads=4, head_k_dim=64, seed=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)

    def rand(*shape, scale=1.0):
        return torch.randn(*shape, device="cuda", generator=gen) * scale

    head_v_dim = 2 * head_k_dim
    # Round once to the kernel dtype; the fp64 reference sees exactly the same values.
    values = dict(
        q=rand(batch, seq, heads, head_k_dim).to(dtype),
        gate_logits=rand(batch, seq, heads, head_k_dim, scale=3.0).to(dtype),
        v=rand(batch, seq, heads, head_v_dim).to(dtype),
        gate=rand(batch, seq, heads, head_v_dim).to(dtype),
        aug_balance=rand(heads * head_k_dim, scale=0.5).float(),
        initial_state=rand(batch, heads, head_k_dim, head_v_dim, scale=0.1) if with_state else None,
    )
    fast = {k: (t.clone().requires_grad_() if t is not None else None) for k, t in values.items()}
    ref = {k: (t.double().requires_grad_() if t is not None else None) for k, t in values.items()}
    return fast, ref


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=["bf16", "fp32"])
@pytest.mark.parametrize("seq", [1, 63, 64, 2048])
def test_fla_recurrence_equals_reference(seq, dtype):
    fast, ref = make_inputs(seq, dtype, with_state=seq != 2048)
    log_decay, key = ops.decay_and_key(fast["gate_logits"])
    out, state = ops.gla_recurrence(
        fast["q"],
        key.to(dtype),
        fast["v"],
        log_decay,
        backend="fla",
        initial_state=fast["initial_state"],
        output_final_state=True,
    )
    ref_log_decay, ref_key = reference.decay_and_key_reference(ref["gate_logits"])
    ref_out, ref_state = reference.recurrent_gla_reference(
        ref["q"], ref_key, ref["v"], ref_log_decay, 64**-0.5, ref["initial_state"]
    )
    name = f"fla-recurrence-T{seq}-{dtype}".replace("torch.", "")
    tolerance = FLA_FP32_TOLERANCE if dtype == torch.float32 else None
    report(f"{name}-output", rel_err(out, ref_out), dtype, tolerance)
    report(f"{name}-state", rel_err(state, ref_state), dtype, tolerance)

    gen = torch.Generator(device="cuda").manual_seed(1)
    d_out = torch.randn(out.shape, device="cuda", generator=gen).to(out.dtype)  # rounded once, seen by both
    d_state = torch.randn(state.shape, device="cuda", generator=gen)
    names = [n for n in ("q", "gate_logits", "v", "initial_state") if fast[n] is not None]
    grads = torch.autograd.grad((out, state), [fast[n] for n in names], (d_out, d_state))
    ref_grads = torch.autograd.grad((ref_out, ref_state), [ref[n] for n in names], (d_out.double(), d_state.double()))
    for n, grad, ref_grad in zip(names, grads, ref_grads):
        report(f"{name}-grad-{n}", rel_err(grad, ref_grad), dtype, tolerance)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=["bf16", "fp32"])
@pytest.mark.parametrize("seq", [1, 63, 64, 2048])
def test_token_mix_fast_path_equals_reference(seq, dtype):
    """What `auto` runs on a GPU: fla for bf16, the exact PyTorch path for fp32."""
    fast, ref = make_inputs(seq, dtype, with_state=True, seed=2)
    assert ops.choose_backend("auto", fast["q"]) == ("fla" if dtype == torch.bfloat16 else "chunked")
    out, state = ops.token_mix(**fast, output_final_state=True)
    ref_out, ref_state = reference.token_mix_reference(**ref)
    name = f"token_mix-T{seq}-{dtype}".replace("torch.", "")
    report(f"{name}-output", rel_err(out, ref_out), dtype)
    d_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, list(fast.values()), d_out)
    ref_grads = torch.autograd.grad(ref_out, list(ref.values()), d_out.double())
    for n, grad, ref_grad in zip(fast, grads, ref_grads):
        report(f"{name}-grad-{n}", rel_err(grad, ref_grad), dtype)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=["bf16", "fp32"])
def test_decode_step_uses_recurrent_kernel_and_matches(dtype):
    fast, ref = make_inputs(1, dtype, with_state=True, seed=3)
    with torch.no_grad():
        out, state = ops.token_mix(**fast, output_final_state=True, backend="fla")
        ref_out, ref_state = reference.token_mix_reference(**ref)
    tolerance = FLA_FP32_TOLERANCE if dtype == torch.float32 else None
    report(f"fla-decode-{dtype}-output".replace("torch.", ""), rel_err(out, ref_out), dtype, tolerance)
    report(f"fla-decode-{dtype}-state".replace("torch.", ""), rel_err(state, ref_state), dtype, tolerance)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=["bf16", "fp32"])
@pytest.mark.parametrize("seq", [1, 63, 2048])
def test_fla_short_conv_equals_reference(seq, dtype):
    gen = torch.Generator(device="cuda").manual_seed(4)
    x = torch.randn(2, seq, 256, device="cuda", generator=gen).to(dtype)
    weight = (torch.rand(256, 4, device="cuda", generator=gen) - 0.5).to(dtype)
    conv_state = torch.randn(2, 256, 4, device="cuda", generator=gen).to(dtype)
    x.requires_grad_()
    y, new_state = ops.short_conv(x, weight, conv_state, output_final_state=True, backend="fla")
    x64 = x.detach().double().requires_grad_()
    ref_y, ref_state = reference.short_conv_reference(x64, weight.double(), conv_state.double())
    name = f"short_conv-T{seq}-{dtype}".replace("torch.", "")
    report(f"{name}-output", rel_err(y, ref_y), dtype)
    report(f"{name}-state", rel_err(new_state, ref_state), dtype)
    d_y = torch.randn_like(y)
    (grad,) = torch.autograd.grad(y, x, d_y)
    (ref_grad,) = torch.autograd.grad(ref_y, x64, d_y.double())
    report(f"{name}-grad-x", rel_err(grad, ref_grad), dtype)


# Packed documents (reset_attention_mask): per row, lengths 1, 2, chunk-1, chunk+1, a chunk starting on a chunk
# boundary, several chunks, and few long documents; every row 512 tokens.
PACKED_LENGTHS = [[1, 2, 63, 65, 64, 130, 187], [300, 1, 1, 210]]


def packed_starts(lengths=PACKED_LENGTHS):
    """(document_starts (rows, seq) bool on the GPU, [(row, start, length), ...])."""
    starts = torch.zeros(len(lengths), sum(lengths[0]), dtype=torch.bool, device="cuda")
    documents = []
    for row, row_lengths in enumerate(lengths):
        position = 0
        for length in row_lengths:
            starts[row, position] = position > 0
            documents.append((row, position, length))
            position += length
    return starts, documents


def each_document_alone(fn, tensors, documents):
    """fn on each document's slice of `tensors` (batch-first), alone, concatenated back into the packed layout."""
    rows = sorted({row for row, _, _ in documents})
    return torch.stack(
        [
            torch.cat([fn(*[t[row : row + 1, s : s + n] for t in tensors])[0] for r, s, n in documents if r == row])
            for row in rows
        ]
    )


def packed_projected(starts, heads, head_k_dim=64, seed=5):
    """[q | decay logits | v | gate] (bf16, rounded once), gate bias and self-augmentation weights (fp32): the
    kernels' inputs, and the same values in fp64 for the reference."""
    gen = torch.Generator(device="cuda").manual_seed(seed)
    width = heads * 2 * head_k_dim
    projected = torch.randn(*starts.shape, 3 * width, device="cuda", generator=gen)
    projected[..., width // 2 : width] *= 3  # decay logits over a wide range
    gate_bias = torch.randn(width, device="cuda", generator=gen) * 0.5
    aug = torch.randn(width // 2, device="cuda", generator=gen) * 0.5
    projected = projected.to(torch.bfloat16)
    fast = [t.clone().requires_grad_() for t in (projected, gate_bias, aug)]
    exact = [t.double().requires_grad_() for t in (projected, gate_bias, aug)]
    return fast, exact


def mix_alone(projected, gate_bias, aug, heads, documents):
    def one(piece):
        width = piece.shape[-1] // 3
        q, logits, v, gate = (t.unflatten(-1, (heads, -1)) for t in piece.split(ops.projection_widths(width), -1))
        y, _ = reference.token_mix_reference(q, logits, v, gate + gate_bias.view(heads, -1), aug)
        return y.flatten(-2)

    return each_document_alone(one, (projected,), documents)


@pytest.mark.parametrize("fused_kernels", [False, True], ids=["separate-kernels", "fused"])
def test_packed_documents_equal_each_document_alone(fused_kernels):
    """reset_attention_mask on the GPU in bf16: fla's varlen core (cu_seqlens, ops/core_op.py) under the default
    separate-kernel path and the fused Function, against each document alone through the fp64 reference, output
    and every gradient (the acceptance line: <= 1e-2). The separate-kernel path is also checked against each
    document alone through itself: the same kernels and roundings, so what remains is the document reset's own."""
    heads = 4
    starts, documents = packed_starts()
    fast, exact = packed_projected(starts, heads)
    assert ops.choose_backend("auto", fast[0]) == "fla"
    options = ops.MetaLAOptions(fused_kernels=fused_kernels)
    ours = ops.metala_mix(*fast, heads, options, seq_first=False, document_starts=starts)
    references = {"fp64": (mix_alone(*exact, heads, documents), exact)}
    if not fused_kernels:  # the fused path compiles per shape: a run per document length would take minutes
        alone = each_document_alone(
            lambda piece: ops.metala_mix(piece, *fast[1:], heads, options, seq_first=False), fast[:1], documents
        )
        references["itself"] = (alone, fast)
    # One cotangent, rounded to the kernel dtype once: the references see exactly what the kernels see.
    cotangent = torch.randn(ours.shape, device="cuda", generator=torch.Generator("cuda").manual_seed(1)).to(ours.dtype)
    grads = torch.autograd.grad(ours, fast, cotangent, retain_graph=True)
    for against, (expected, inputs) in references.items():
        name = f"packed-{'fused' if fused_kernels else 'separate'}-bf16-vs-{against}"
        report(f"{name}-output", rel_err(ours, expected.double()), torch.bfloat16)
        expected_grads = torch.autograd.grad(expected, inputs, cotangent.to(expected.dtype))
        for part, grad, expected_grad in zip(("projected", "gate_bias", "aug_balance"), grads, expected_grads):
            report(f"{name}-grad-{part}", rel_err(grad, expected_grad.double()), torch.bfloat16)


def test_packed_documents_short_conv_equals_each_document_alone():
    starts, documents = packed_starts()
    gen = torch.Generator(device="cuda").manual_seed(6)
    x = torch.randn(*starts.shape, 256, device="cuda", generator=gen).to(torch.bfloat16).requires_grad_()
    weight = (torch.rand(256, 4, device="cuda", generator=gen) - 0.5).to(torch.bfloat16)
    y, _ = ops.short_conv(x, weight, document_starts=starts)
    x64 = x.detach().double().requires_grad_()
    expected = each_document_alone(
        lambda piece: reference.short_conv_reference(piece, weight.double())[0], (x64,), documents
    )
    report("packed-short_conv-bf16-output", rel_err(y, expected), torch.bfloat16)
    d_y = torch.randn(y.shape, device="cuda", generator=gen).to(y.dtype)
    (grad,) = torch.autograd.grad(y, x, d_y)
    (expected_grad,) = torch.autograd.grad(expected, x64, d_y.double())
    report("packed-short_conv-bf16-grad-x", rel_err(grad, expected_grad), torch.bfloat16)

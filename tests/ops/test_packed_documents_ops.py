"""Packed documents (reset_attention_mask): every path of neox_metala.ops given `document_starts` equals running each
document alone through the step-by-step reference (which never sees `document_starts`), values and gradients.
fp64 to 1e-10; the fp32 acceptance line (<= 1e-6) on the default CPU path."""

import pytest
import torch

from neox_metala import ops
from neox_metala.ops import core_op, reference
from neox_metala.ops.chunked import chunked_gla
from neox_metala.ops.fused import EAGER_KERNELS, TorchCore, fused_token_mix

from packed_mix import packed_starts

F64 = torch.float64
CHUNK = 8
# Per row, documents of awkward lengths for chunk 8: 1, 2, chunk-1, chunk+1, a whole chunk starting on a chunk
# boundary, several chunks long, and a row that is one document (no start inside).
LENGTHS = [[1, 2, 7, 9, 8, 19, 1], [16, 1, 1, 29], [47]]


def packed(lengths=LENGTHS):
    """(document_starts (rows, seq) bool, [(row, start, length), ...]) for rows of equal total length."""
    assert len({sum(row) for row in lengths}) == 1
    return packed_starts(lengths)


def each_document(fn, tensors, documents, seq_dim=1):
    """fn(*document slices of `tensors`) for every document, written back into one packed (rows, seq, ...) tensor."""
    out = None
    for row, start, length in documents:
        pieces = [t[row : row + 1].narrow(seq_dim, start, length) for t in tensors]
        result = fn(*pieces)
        if out is None:
            out = result.new_zeros(len({d[0] for d in documents}), *[tensors[0].shape[seq_dim], *result.shape[2:]])
        out[row, start : start + length] = result[0]
    return out


def rel_err(actual, expected):
    return ((actual - expected).norm() / expected.norm().clamp_min(1e-300)).item()


def gla_inputs(dtype=F64, heads=3, head_k_dim=4, head_v_dim=6, seed=0):
    starts, _ = packed()
    rows, seq = starts.shape
    gen = torch.Generator().manual_seed(seed)
    log_decay, key = reference.decay_and_key_reference(torch.randn(rows, seq, heads, head_k_dim, generator=gen) * 3)
    tensors = (
        torch.randn(rows, seq, heads, head_k_dim, generator=gen),
        key,
        torch.randn(rows, seq, heads, head_v_dim, generator=gen),
        log_decay,
    )
    return [t.to(dtype).requires_grad_() for t in tensors]


def documents_alone(q, key, v, log_decay, scale, documents):
    """The recurrence reference on each document alone (from a zero state), packed back: the independent truth."""
    return each_document(
        lambda *piece: reference.recurrent_gla_reference(*piece, scale)[0], (q, key, v, log_decay), documents
    )


def check_against_documents_alone(run, dtype=F64, tolerance=1e-10):
    """run(q, key, v, log_decay, scale, document_starts) -> output; values and every gradient vs documents alone."""
    starts, documents = packed()
    inputs = gla_inputs(dtype)
    scale = inputs[0].shape[-1] ** -0.5
    output = run(*inputs, scale, starts)
    expected = documents_alone(*inputs, scale, documents)
    cotangent = torch.randn(output.shape, dtype=dtype, generator=torch.Generator().manual_seed(9))
    errors = {"output": rel_err(output, expected)}
    grads = torch.autograd.grad(output, inputs, cotangent)
    expected_grads = torch.autograd.grad(expected, inputs, cotangent)
    for name, grad, expected_grad in zip(("q", "key", "v", "log_decay"), grads, expected_grads):
        errors[name] = rel_err(grad, expected_grad)
    assert max(errors.values()) <= tolerance, errors
    return errors


@pytest.mark.parametrize("chunk_size", [CHUNK, 16, 64], ids=["chunk8", "chunk16", "chunk64-longer-than-docs"])
def test_chunked_equals_documents_alone(chunk_size):
    check_against_documents_alone(
        lambda q, key, v, log_decay, scale, starts: ops.gla_recurrence(
            q, key, v, log_decay, scale=scale, backend="chunked", chunk_size=chunk_size, document_starts=starts
        )[0]
    )


def test_reference_backend_equals_documents_alone():
    check_against_documents_alone(
        lambda q, key, v, log_decay, scale, starts: ops.gla_recurrence(
            q, key, v, log_decay, scale=scale, backend="reference", document_starts=starts
        )[0]
    )


def test_core_op_equals_documents_alone_and_passes_opcheck():
    """The custom op that compiled GPU blocks hold (its CPU kernel here), with document starts."""
    check_against_documents_alone(core_op.gla_core)
    starts, _ = packed()
    torch.library.opcheck(core_op.gla_forward, (*gla_inputs(), 0.5, starts))


def test_fp32_default_cpu_path_within_acceptance():
    """The acceptance line: the CPU path (chunked, fp32) against documents run alone through the fp32 reference."""
    errors = check_against_documents_alone(
        lambda q, key, v, log_decay, scale, starts: ops.gla_recurrence(
            q, key, v, log_decay, scale=scale, chunk_size=CHUNK, document_starts=starts
        )[0],
        dtype=torch.float32,
        tolerance=1e-6,
    )
    print("fp32 packed-vs-alone relative errors", errors)


def test_no_document_start_is_bitwise_no_document_starts():
    """The masks multiply by exactly 1 where no document starts: the same bits as the path without them."""
    q, key, v, log_decay = gla_inputs()
    none_start = torch.zeros(q.shape[:2], dtype=torch.bool)
    plain, _ = chunked_gla(q, key, v, log_decay, 0.5, chunk_size=CHUNK)
    masked, _ = chunked_gla(q, key, v, log_decay, 0.5, chunk_size=CHUNK, document_starts=none_start)
    assert torch.equal(plain, masked)


@pytest.mark.parametrize("backend", ["chunked", "reference"])
def test_short_conv_equals_documents_alone(backend):
    starts, documents = packed()
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(*starts.shape, 5, dtype=F64, generator=gen, requires_grad=True)
    weight = torch.randn(5, 4, dtype=F64, generator=gen, requires_grad=True)
    y, state = ops.short_conv(x, weight, backend=backend, document_starts=starts)
    expected = each_document(lambda piece: reference.short_conv_reference(piece, weight)[0], (x,), documents)
    assert state is None and rel_err(y, expected) <= 1e-12
    cotangent = torch.randn(y.shape, dtype=F64, generator=gen)
    for grad, expected_grad in zip(
        torch.autograd.grad(y, (x, weight), cotangent), torch.autograd.grad(expected, (x, weight), cotangent)
    ):
        assert rel_err(grad, expected_grad) <= 1e-12


def token_mix_inputs(heads=3, head_k_dim=4, seed=5):
    starts, _ = packed()
    gen = torch.Generator().manual_seed(seed)
    width = heads * 2 * head_k_dim
    projected = torch.randn(*starts.shape, 3 * width, dtype=F64, generator=gen)
    projected[..., width // 2 : width] *= 3  # decay logits over a wide range
    gate_bias = torch.randn(width, dtype=F64, generator=gen)
    aug = torch.randn(width // 2, dtype=F64, generator=gen)
    return [t.requires_grad_() for t in (projected, gate_bias, aug)]


def token_mix_alone(projected, gate_bias, aug, heads, documents):
    """Everything between the projections, on each document alone, by the reference (ops/reference.py)."""

    def one(piece):
        width = piece.shape[-1] // 3
        q, logits, v, gate = (t.unflatten(-1, (heads, -1)) for t in piece.split(ops.projection_widths(width), -1))
        y, _ = reference.token_mix_reference(q, logits, v, gate + gate_bias.view(heads, -1), aug)
        return y.flatten(-2)

    return each_document(one, (projected,), documents)


@pytest.mark.parametrize("path", ["separate-kernels", "fused-function"])
def test_metala_mix_equals_documents_alone(path):
    """What a layer calls: the separate-kernel path (metala_mix on CPU) and the fused GPU Function (its
    pure-PyTorch core and eager steps), both with document starts, values and every gradient."""
    heads = 3
    starts, documents = packed()
    projected, gate_bias, aug = token_mix_inputs(heads)
    if path == "fused-function":
        mixed = fused_token_mix(
            projected,
            gate_bias,
            aug,
            heads,
            normalizer=16.0,
            eps=1e-5,
            seq_first=False,
            core=TorchCore(CHUNK),
            kernels=EAGER_KERNELS,
            document_starts=starts,
        )
    else:
        options = ops.MetaLAOptions(chunk_size=CHUNK)
        mixed = ops.metala_mix(projected, gate_bias, aug, heads, options, seq_first=False, document_starts=starts)
    expected = token_mix_alone(projected, gate_bias, aug, heads, documents)
    assert rel_err(mixed, expected) <= 1e-10
    cotangent = torch.randn(mixed.shape, dtype=F64, generator=torch.Generator().manual_seed(6))
    inputs = (projected, gate_bias, aug)
    grads = torch.autograd.grad(mixed, inputs, cotangent)
    for name, grad, expected_grad in zip(
        ("projected", "gate_bias", "aug"), grads, torch.autograd.grad(expected, inputs, cotangent)
    ):
        assert rel_err(grad, expected_grad) <= 1e-9, name


def test_document_starts_are_refused_with_carried_state_or_a_wrong_shape():
    q, key, v, log_decay = gla_inputs()
    starts, _ = packed()
    state = torch.zeros(q.shape[0], q.shape[2], q.shape[3], v.shape[3], dtype=F64)
    with pytest.raises(ValueError, match="from an empty state"):
        ops.gla_recurrence(q, key, v, log_decay, initial_state=state, document_starts=starts)
    with pytest.raises(ValueError, match="from an empty state"):
        ops.short_conv(
            torch.zeros(*starts.shape, 2), torch.zeros(2, 4), output_final_state=True, document_starts=starts
        )
    with pytest.raises(ValueError, match=r"bool \(batch, seq\) = \(3, 47\) tensor, got torch.int64 \(3, 47\)"):
        ops.gla_recurrence(q, key, v, log_decay, document_starts=starts.long())

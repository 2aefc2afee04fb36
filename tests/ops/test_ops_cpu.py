"""neox_metala.ops against the step-by-step reference (the spec in code), in float64 on CPU."""

import logging

import pytest
import torch

from neox_metala import ops
from neox_metala.ops import reference
from neox_metala.ops.chunked import chunked_gla

F64 = torch.float64


def rel_err(actual, expected):
    # A zero reference (e.g. d log_decay of a one-token sequence from a zero state) must be matched exactly.
    return ((actual - expected).norm() / expected.norm().clamp_min(1e-300)).item()


def random_gla_inputs(batch, seq, heads, head_k_dim, head_v_dim, with_state, generator, logit_shift=0.0):
    def rand(*shape):
        return torch.randn(*shape, dtype=F64, generator=generator)

    gate_logits = rand(batch, seq, heads, head_k_dim) * 3 + logit_shift
    log_decay, key = reference.decay_and_key_reference(gate_logits)
    inputs = {
        "q": rand(batch, seq, heads, head_k_dim),
        "key": key,
        "v": rand(batch, seq, heads, head_v_dim),
        "log_decay": log_decay,
    }
    inputs["initial_state"] = rand(batch, heads, head_k_dim, head_v_dim) if with_state else None
    return {name: t.detach().requires_grad_() if t is not None else None for name, t in inputs.items()}


def grads_of(outputs, inputs, cotangents):
    tensors = [t for t in inputs.values() if t is not None]
    return torch.autograd.grad(outputs, tensors, cotangents)


# Awkward sizes: T not a multiple of the chunk, T=1, T < chunk, several heads, batch > 1, dk != dv.
GLA_CASES = [
    pytest.param(2, 37, 3, 4, 6, 8, id="B2-T37-H3-chunk8"),
    pytest.param(1, 1, 2, 3, 5, 16, id="B1-T1-H2"),
    pytest.param(3, 64, 2, 4, 4, 16, id="B3-T64-exact-chunks"),
    pytest.param(2, 100, 1, 5, 3, 32, id="B2-T100-H1-chunk32"),
    pytest.param(1, 7, 4, 2, 8, 64, id="B1-T7-shorter-than-chunk"),
]


@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "initial-state"])
@pytest.mark.parametrize("batch,seq,heads,head_k_dim,head_v_dim,chunk_size", GLA_CASES)
def test_chunked_equals_reference_outputs_state_and_grads(
    batch, seq, heads, head_k_dim, head_v_dim, chunk_size, with_state
):
    gen = torch.Generator().manual_seed(seq * 7 + heads)
    inputs = random_gla_inputs(batch, seq, heads, head_k_dim, head_v_dim, with_state, gen)
    scale = head_k_dim**-0.5
    out, state = chunked_gla(**inputs, scale=scale, output_final_state=True, chunk_size=chunk_size)
    ref_out, ref_state = reference.recurrent_gla_reference(**inputs, scale=scale)
    assert rel_err(out, ref_out) <= 1e-10
    assert rel_err(state, ref_state) <= 1e-10

    cotangents = (torch.randn(out.shape, dtype=F64, generator=gen), torch.randn(state.shape, dtype=F64, generator=gen))
    grads = grads_of((out, state), inputs, cotangents)
    ref_grads = grads_of((ref_out, ref_state), inputs, cotangents)
    for name, grad, ref_grad in zip([n for n, t in inputs.items() if t is not None], grads, ref_grads):
        assert rel_err(grad, ref_grad) <= 1e-10, name


def test_chunked_gradcheck():
    gen = torch.Generator().manual_seed(0)
    inputs = random_gla_inputs(1, 6, 2, 2, 3, True, gen)

    def chunked(q, key, v, log_decay, initial_state):
        return chunked_gla(q, key, v, log_decay, 0.7, initial_state, True, chunk_size=4)

    assert torch.autograd.gradcheck(chunked, tuple(inputs.values()))


def random_token_mix_inputs(batch, seq, heads, head_k_dim, gen, logit_shift=0.0):
    head_v_dim = 2 * head_k_dim  # MetaLA: per-head v width is twice the q/k width

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, dtype=F64, generator=gen) * scale).requires_grad_()

    return dict(
        q=rand(batch, seq, heads, head_k_dim),
        gate_logits=(
            torch.randn(batch, seq, heads, head_k_dim, dtype=F64, generator=gen) * 3 + logit_shift
        ).requires_grad_(),
        v=rand(batch, seq, heads, head_v_dim),
        gate=rand(batch, seq, heads, head_v_dim),
        aug_balance=rand(heads * head_k_dim, scale=0.5),
        initial_state=rand(batch, heads, head_k_dim, head_v_dim),
    )


@pytest.mark.parametrize(
    "batch,seq,heads,head_k_dim,chunk_size",
    [
        pytest.param(2, 29, 3, 4, 8, id="B2-T29-H3"),
        pytest.param(1, 1, 2, 4, 64, id="T1"),
        pytest.param(2, 70, 2, 3, 16, id="B2-T70-odd-dk"),
    ],
)
def test_token_mix_equals_reference_with_grads(batch, seq, heads, head_k_dim, chunk_size):
    gen = torch.Generator().manual_seed(1)
    inputs = random_token_mix_inputs(batch, seq, heads, head_k_dim, gen)
    out, state = ops.token_mix(**inputs, output_final_state=True, backend="chunked", chunk_size=chunk_size)
    ref_out, ref_state = reference.token_mix_reference(**inputs)
    assert rel_err(out, ref_out) <= 1e-10 and rel_err(state, ref_state) <= 1e-10
    cotangents = (torch.randn(out.shape, dtype=F64, generator=gen), torch.randn(state.shape, dtype=F64, generator=gen))
    grads = grads_of((out, state), inputs, cotangents)
    ref_grads = grads_of((ref_out, ref_state), inputs, cotangents)
    for name, grad, ref_grad in zip(inputs, grads, ref_grads):
        assert rel_err(grad, ref_grad) <= 1e-10, name


def test_token_mix_gradcheck():
    gen = torch.Generator().manual_seed(2)
    inputs = random_token_mix_inputs(1, 5, 2, 2, gen)

    def mix(*args):
        return ops.token_mix(*args[:5], initial_state=args[5], output_final_state=True, backend="chunked", chunk_size=2)

    assert torch.autograd.gradcheck(mix, tuple(inputs.values()))


def test_short_conv_equals_reference_with_state_and_grads():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 9, 6, dtype=F64, generator=gen, requires_grad=True)
    weight = torch.randn(6, 4, dtype=F64, generator=gen, requires_grad=True)
    conv_state = torch.randn(2, 6, 4, dtype=F64, generator=gen, requires_grad=True)
    y, state = ops.short_conv(x, weight, conv_state, output_final_state=True, backend="chunked")
    ref_y, ref_state = reference.short_conv_reference(x, weight, conv_state)
    assert rel_err(y, ref_y) <= 1e-12 and torch.equal(state, ref_state)
    cotangent = torch.randn(y.shape, dtype=F64, generator=gen)
    grads = torch.autograd.grad(y, (x, weight, conv_state), cotangent)
    ref_grads = torch.autograd.grad(ref_y, (x, weight, conv_state), cotangent)
    for grad, ref_grad in zip(grads, ref_grads):
        assert rel_err(grad, ref_grad) <= 1e-12


def mixer_core(x, weight, projections, heads, conv_state=None, recurrent_state=None):
    """conv -> four projections -> token_mix, carrying both states (what a layer does, minus TP)."""
    xc, conv_state = ops.short_conv(x, weight, conv_state, output_final_state=True)
    q, gate_logits, v, gate = (ops.split_heads(xc @ w, heads) for w in projections)
    y, recurrent_state = ops.token_mix(
        q,
        gate_logits,
        v,
        gate,
        projections[0].new_ones(q.shape[-1] * heads),
        initial_state=recurrent_state,
        output_final_state=True,
        chunk_size=8,
    )
    return y, conv_state, recurrent_state


@pytest.mark.parametrize("split_at", [1, 3, 13, 20])
def test_split_sequence_carrying_states_equals_one_pass(split_at):
    gen = torch.Generator().manual_seed(4)
    channels, heads = 8, 2
    x = torch.randn(2, 21, channels, dtype=F64, generator=gen)
    weight = torch.randn(channels, 4, dtype=F64, generator=gen)
    projections = [
        torch.randn(channels, width, dtype=F64, generator=gen) * 0.3
        for width in (channels // 2, channels // 2, channels, channels)
    ]
    full, _, _ = mixer_core(x, weight, projections, heads)
    first, conv_state, recurrent_state = mixer_core(x[:, :split_at], weight, projections, heads)
    second, _, _ = mixer_core(x[:, split_at:], weight, projections, heads, conv_state, recurrent_state)
    assert rel_err(torch.cat([first, second], dim=1), full) <= 1e-12


def test_strong_decay_and_long_sequence_are_finite_and_exact():
    gen = torch.Generator().manual_seed(5)
    inputs = random_token_mix_inputs(1, 4096, 2, 4, gen, logit_shift=-30.0)
    with torch.no_grad():
        out, state = ops.token_mix(**inputs, output_final_state=True, backend="chunked")
        ref_out, ref_state = reference.token_mix_reference(**inputs)
    assert torch.isfinite(out).all() and torch.isfinite(state).all()
    assert rel_err(out, ref_out) <= 1e-10 and rel_err(state, ref_state) <= 1e-10
    # The same in float32: every exponent is a difference <= 0, so nothing overflows.
    inputs32 = {k: v.detach().float() for k, v in inputs.items()}
    with torch.no_grad():
        out32, state32 = ops.token_mix(**inputs32, output_final_state=True, backend="chunked")
    assert torch.isfinite(out32).all() and rel_err(out32.double(), ref_out) <= 1e-4


def test_bad_inputs_raise_clear_value_errors():
    q = torch.randn(2, 5, 3, 4)
    with pytest.raises(ValueError, match="width 10 is not divisible by 4 heads"):
        ops.split_heads(torch.randn(2, 5, 10), 4)
    with pytest.raises(ValueError, match="key shape .* does not match q shape"):
        ops.gla_recurrence(q, torch.randn(2, 5, 3, 5), torch.randn(2, 5, 3, 8), torch.randn(2, 5, 3, 4))
    with pytest.raises(ValueError, match="v must be"):
        ops.gla_recurrence(q, q, torch.randn(2, 6, 3, 8), q)
    with pytest.raises(ValueError, match=r"initial_state must be .* = \(2, 3, 4, 8\)"):
        ops.gla_recurrence(q, q, torch.randn(2, 5, 3, 8), q, initial_state=torch.zeros(2, 3, 8, 4))
    with pytest.raises(ValueError, match="unknown MetaLA backend 'triton'"):
        ops.gla_recurrence(q, q, torch.randn(2, 5, 3, 8), q, backend="triton")
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        ops.gla_recurrence(q, q, torch.randn(2, 5, 3, 8), q, backend="fla")
    with pytest.raises(ValueError, match=r"conv_state must be .* = \(2, 6, 4\)"):
        ops.short_conv(torch.randn(2, 5, 6), torch.randn(6, 4), torch.zeros(2, 6, 3))
    with pytest.raises(ValueError, match="aug_balance has 5 entries"):
        ops.token_mix(q, q, torch.randn(2, 5, 3, 8), torch.randn(2, 5, 3, 8), torch.zeros(5))


def test_auto_backend_on_cpu_is_chunked_and_logged_once(caplog):
    q = torch.randn(1, 3, 1, 2)
    assert ops.choose_backend("auto", q) == "chunked"
    assert ops.choose_backend("auto", q.double()) == "chunked"
    with caplog.at_level(logging.INFO, logger="neox_metala.ops.metala"):
        for _ in range(3):
            ops.gla_recurrence(q, q, torch.randn(1, 3, 1, 4), -q.abs(), chunk_size=2)
    # Once per (op, kernel, device, dtype) over the whole process: this test may not be the first caller.
    assert sum("recurrence runs on chunked" in r.message for r in caplog.records) <= 1

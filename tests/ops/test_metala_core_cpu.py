"""The MetaLA core's chunk form (ops/metala_core.py: the Triton kernels' algorithm in PyTorch) against the
step-by-step recurrence with key = -expm1(log_decay), in fp64: the output and every gradient (d log_decay
includes the key's path), through the explicit backward and through autograd of the forward, at awkward lengths,
for draws whose chunks take the factorised form, the exact form, or both in one sequence."""

import pytest
import torch
from metala_core_draws import draw

from neox_metala.ops import metala_core, reference

F64 = torch.float64
SCALE = 0.35


def reference_output(q, log_decay, v):
    return reference.recurrent_gla_reference(q, metala_core.key_from_log_decay(log_decay), v, log_decay, SCALE)[0]


def rel_err(actual, expected):
    return ((actual - expected).norm() / expected.norm().clamp_min(1e-300)).item()


def factorised_share(log_decay):
    chunks = metala_core._to_chunks(log_decay, metala_core.CHUNK_SIZE, F64).cumsum(-2)
    return metala_core.factorised_chunks(chunks).double().mean().item()


CASES = [
    pytest.param(1, "mild", id="T1-mild"),
    pytest.param(63, "mild", id="T63-mild"),
    pytest.param(65, "mild", id="T65-mild"),
    pytest.param(130, "mild", id="T130-mild"),
    pytest.param(63, "strong", id="T63-strong"),
    pytest.param(130, "strong", id="T130-strong"),
    pytest.param(130, "mixed", id="T130-mixed"),
    pytest.param(100, "moderate", id="T100-moderate"),
    pytest.param(130, "graded", id="T130-graded"),
]


@pytest.mark.parametrize("seq, decay", CASES)
def test_chunk_form_output_and_gradients_equal_the_recurrence(seq, decay):
    inputs = [t.requires_grad_() for t in draw(2, seq, 2, 8, 6, decay)]
    expected = reference_output(*inputs)
    cotangent = torch.randn_like(expected)
    expected_grads = torch.autograd.grad(expected, inputs, cotangent)

    output = metala_core.metala_core_chunked(*inputs, SCALE)
    assert rel_err(output, expected) <= 1e-10
    explicit = torch.autograd.grad(output, inputs, cotangent)
    by_autograd = torch.autograd.grad(metala_core.metala_core_forward(*inputs, SCALE), inputs, cotangent)
    # d log_decay sums terms of the size of q ⊙ dq that cancel to ~1e-5 of it under strong decay: fp64 rounding
    # of those terms (in the reference as here) is its floor, ~1e-16 of their size, not of the result's
    floors = (0.0, 1e-13 * (inputs[0] * expected_grads[0]).norm().item(), 0.0)
    for name, got, via_autograd, want, floor in zip(
        ("q", "log_decay", "v"), explicit, by_autograd, expected_grads, floors
    ):
        for path, value in (("explicit", got), ("autograd", via_autograd)):
            error = (value - want).norm().item()
            assert error <= 1e-10 * want.norm().item() + floor, (name, path, rel_err(value, want))


def test_draws_take_the_forms_they_are_meant_to():
    assert factorised_share(draw(1, 130, 2, 8, 6, "mild")[1]) == 1.0
    assert factorised_share(draw(1, 128, 2, 8, 6, "strong")[1]) == 0.0
    assert factorised_share(draw(1, 130, 2, 8, 6, "strong")[1]) == pytest.approx(1 / 3)  # a 2-token last chunk
    share = factorised_share(draw(1, 130, 2, 8, 6, "mixed")[1])
    assert share == pytest.approx(2 / 3)  # per (batch, head): chunks 0 and 2 factorised, chunk 1 exact
    assert factorised_share(draw(1, 128, 2, 8, 6, "moderate")[1]) == 0.0
    assert factorised_share(draw(1, 128, 2, 8, 6, "graded")[1]) == 0.0


def test_factorised_form_is_finite_at_its_bound():
    """A chunk whose total log decay is just inside the bound: the factors reach e^±30, the discarded pairs e^60."""
    q, _, v = draw(1, 64, 1, 4, 3, "mild")
    log_decay = torch.full_like(q, -(metala_core.FACTORISED_RANGE - 1e-6) / 64)
    assert factorised_share(log_decay) == 1.0
    output = metala_core.metala_core_forward(q.float(), log_decay.float(), v.float(), SCALE)
    assert rel_err(output.double(), reference_output(q, log_decay, v)) <= 1e-5

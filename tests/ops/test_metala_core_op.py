"""MetaLA's own core as custom ops (ops/metala_core_op.py): values and gradients (d gate logits through logsigmoid)
of the CPU kernels against the fp64 recurrence through the op's autograd, on contiguous inputs and on views of one
projection, its registrations under torch.library.opcheck, the forward's kept states against a direct computation,
and the refusal of packed documents."""

import logging

import pytest
import torch

from neox_metala.ops import metala_core, metala_core_op, reference

F64 = torch.float64
SCALE = 0.35
NORMALIZER = 16.0


def draw(seq=70, strong_chunk=True, seed=2, views=False):
    """q, v, gate logits; with views, head-split views of one (B, T, 3W)-like projection, as the layer passes them."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, seq, 3, 8, dtype=F64, generator=gen) * 3
    if strong_chunk:
        logits[:, 64:, :, 2] -= 200  # the second chunk takes the exact form
    q = torch.randn(2, seq, 3, 8, dtype=F64, generator=gen)
    v = torch.randn(2, seq, 3, 5, dtype=F64, generator=gen)
    if not views:
        return q, v, logits
    projected = torch.cat([t.flatten(-2) for t in (q, v, logits)], -1)  # (B, T, 24 + 15 + 24)
    return [part.unflatten(-1, (3, -1)) for part in projected.split([24, 15, 24], -1)]


def log_decay_and_key(logits):
    return reference.decay_and_key_reference(logits, NORMALIZER)


@pytest.mark.parametrize("views", [False, True], ids=["contiguous", "views"])
@pytest.mark.parametrize("keep_states", [False, True], ids=["recomputed", "kept"])
def test_op_values_and_gradients_equal_the_recurrence(keep_states, views):
    inputs = [t.detach().requires_grad_() for t in draw(views=views)]
    q, v, logits = inputs
    output = metala_core_op.metala_core(q, v, logits, SCALE, NORMALIZER, keep_states=keep_states)
    log_decay, key = log_decay_and_key(logits)
    expected, _ = reference.recurrent_gla_reference(q, key, v, log_decay, SCALE)
    cotangent = torch.randn_like(expected)
    grads = torch.autograd.grad(output, inputs, cotangent)
    expected_grads = torch.autograd.grad(expected, inputs, cotangent)
    assert torch.allclose(output, expected, rtol=1e-10, atol=1e-12)
    for got, want in zip(grads, expected_grads):
        assert torch.allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("views", [False, True], ids=["contiguous", "views"])
def test_op_registrations_pass_opcheck(views):
    q, v, logits = (t.detach().requires_grad_() for t in draw(seq=20, strong_chunk=False, views=views))
    for keep_states in (False, True):
        torch.library.opcheck(metala_core_op.metala_core_forward, (q, logits, v, SCALE, NORMALIZER, keep_states))


def test_kept_states_are_the_states_entering_each_chunk():
    q, v, logits = draw(seq=130)
    _, states = metala_core_op.metala_core_forward(q, logits, v, SCALE, NORMALIZER, True)  # (B, H, N, K, V)
    log_decay, key = log_decay_and_key(logits)
    assert torch.equal(states[:, :, 0], torch.zeros_like(states[:, :, 0]))  # from a zero state
    for chunk in (1, 2):
        start = chunk * metala_core.CHUNK_SIZE
        _, state = reference.recurrent_gla_reference(
            q[:, :start], key[:, :start], v[:, :start], log_decay[:, :start], 1
        )
        assert torch.allclose(states[:, :, chunk], state, rtol=1e-10, atol=1e-12)


def test_packed_documents_are_refused():
    q, v, logits = draw(seq=8)
    with pytest.raises(ValueError, match="packed documents"):
        metala_core_op.metala_core(q, v, logits, SCALE, NORMALIZER, document_starts=torch.zeros(2, 8, dtype=torch.bool))


@pytest.mark.parametrize("keep", [True, False], ids=["kept-states", "recomputed-states"])
def test_metala_core_kernel_option_routes_the_fla_backend_to_the_op(monkeypatch, caplog, keep):
    """metala_core_kernel: "metala" runs this op where the fla backend runs its core (the mixer's whole path: the
    CPU stands in for the GPU, as tests/ops/test_core_op.py does), with keep_core_states as its keep_states;
    packed documents keep fla's core and say so; the mixer's output and gradients equal the fp64 reference path's."""
    from neox_metala import ops
    from neox_metala.ops import core_op, metala

    monkeypatch.setattr(metala, "choose_backend", lambda requested, tensor: "fla")
    calls = {"metala": 0, "fla": 0}
    kept = []

    def counted(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            kept.extend([kwargs["keep_states"]] if name == "metala" else [])
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(metala_core_op, "metala_core", counted("metala", metala_core_op.metala_core))
    monkeypatch.setattr(core_op, "gla_core", counted("fla", core_op.gla_core))
    from mixer_routing import MIX_HEADS as heads
    from mixer_routing import mix_parameters

    parameters = mix_parameters()

    def mix(options, document_starts=None):
        out = ops.metala_mix(*parameters, heads, options, seq_first=False, document_starts=document_starts)
        return out, torch.autograd.grad(out, parameters, torch.ones_like(out))

    # the compiled epilogue: with MetaLA's epilogue kernels too, the core runs inside ops/mixer_op.py's one op
    mine, my_grads = mix(ops.MetaLAOptions(core_kernel="metala", keep_core_states=keep, epilogue_kernel="compiled"))
    assert calls == {"metala": 1, "fla": 0} and kept == [keep]
    monkeypatch.setattr(metala, "choose_backend", lambda requested, tensor: "reference")
    expected, expected_grads = mix(ops.MetaLAOptions())
    assert torch.allclose(mine, expected, rtol=1e-10, atol=1e-12)
    for got, want in zip(my_grads, expected_grads):
        assert torch.allclose(got, want, rtol=1e-9, atol=1e-11)

    monkeypatch.setattr(metala, "choose_backend", lambda requested, tensor: "fla")
    monkeypatch.setattr(metala, "_logged_choices", set())
    starts = torch.zeros(2, 70, dtype=torch.bool)
    starts[:, 30] = True
    with caplog.at_level(logging.INFO, logger=metala._logger.name):
        mix(ops.MetaLAOptions(core_kernel="metala", epilogue_kernel="compiled"), document_starts=starts)
    assert calls == {"metala": 1, "fla": 1}
    assert "training core runs on fla's chunk_gla (packed documents" in caplog.text

"""ops/mixer_op.py on the CPU: the one-op token mix (MetaLA's own core and epilogue, the projection's gradient written
once) against the fp64 reference (ops/reference.py's step-by-step recurrence and epilogue, tests/ops/mix_references.py),
output and the gradients of the projection, gate_bias and aug_balance, with and without self-augmentation, seq- or
batch-first, states kept or recomputed; its registrations under torch.library.opcheck; and the routing of
metala_mix to it on the fla backend with both own kernels. The op's Triton path: tests/ops/test_mixer_triton.py."""

import pytest
import torch
from mixer_routing import MIX_HEADS, mix_parameters

from neox_metala.ops import MetaLAOptions, metala, mixer_op

from mix_references import mix_errors, reference_mix

F64 = torch.float64
NORMALIZER, EPS = 16.0, 1e-5  # the reference's decay normalizer and the LayerNorm's epsilon


def reference(projected, gate_bias, aug_balance, seq_first):
    y = reference_mix(projected, gate_bias, aug_balance, MIX_HEADS, seq_first=seq_first)
    leaves = (projected, gate_bias) if aug_balance is None else (projected, gate_bias, aug_balance)
    return y, torch.autograd.grad(y, leaves, cotangent(y))


def cotangent(y):
    return torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("aug", [True, False], ids=["aug", "no-aug"])
@pytest.mark.parametrize("seq_first", [True, False], ids=["seq-first", "batch-first"])
@pytest.mark.parametrize("keep_states", [True, False], ids=["kept", "recomputed"])
def test_op_equals_the_fp64_reference(aug, seq_first, keep_states):
    projected, gate_bias, aug_balance = mix_parameters()
    aug_balance = aug_balance if aug else None
    leaves = (projected, gate_bias) if aug_balance is None else (projected, gate_bias, aug_balance)
    y = mixer_op.metala_mixer(projected, gate_bias, aug_balance, MIX_HEADS, NORMALIZER, EPS, seq_first, keep_states)
    y = y.flatten(-2)
    y = y.transpose(0, 1) if seq_first else y
    assert y.is_contiguous()  # laid out as the out projection reads it: no copy
    grads = torch.autograd.grad(y, leaves, cotangent(y))
    expected, expected_grads = reference(projected, gate_bias, aug_balance, seq_first)
    errors = mix_errors(y, grads, expected, expected_grads, MIX_HEADS)
    assert max(errors.values()) < 1e-10, errors


def test_op_registrations_pass_opcheck():
    projected, gate_bias, aug_balance = mix_parameters()
    args = (projected, gate_bias, aug_balance, MIX_HEADS, NORMALIZER, EPS, True, True)
    torch.library.opcheck(mixer_op.mixer_forward, args)
    y, o, stats, states = mixer_op.mixer_forward(*args)
    detached = [t.detach() for t in (projected, gate_bias, aug_balance)]
    dy = cotangent(y)
    backward_args = (dy, detached[0], o, stats, states, *detached[1:], MIX_HEADS, NORMALIZER)
    torch.library.opcheck(mixer_op.mixer_backward, backward_args)


@pytest.mark.parametrize(
    "core_kernel, epilogue_kernel, one_op",
    [("metala", "triton", True), ("fla", "triton", False), ("metala", "compiled", False)],
    ids=["both-own", "fla-core", "compiled-epilogue"],
)
def test_metala_mix_routes_to_the_op_with_both_own_kernels(monkeypatch, core_kernel, epilogue_kernel, one_op):
    """On the fla backend metala_mix runs the one op exactly when both own kernels are chosen (and no documents are
    packed), equal to the two-op path in fp64, in one graph under torch.compile (aot_eager: fake kernels traced)."""
    monkeypatch.setattr(metala, "choose_backend", lambda requested, tensor: "fla")
    calls = []
    op = mixer_op.metala_mixer
    monkeypatch.setattr(mixer_op, "metala_mixer", lambda *args, **kw: calls.append(1) or op(*args, **kw))
    parameters = mix_parameters()

    def mix(options, compile_it=False, document_starts=None):
        def run_mix(*leaves):
            return metala.metala_mix(*leaves, MIX_HEADS, options, seq_first=True, document_starts=document_starts)

        out = (torch.compile(run_mix, backend="aot_eager", fullgraph=True) if compile_it else run_mix)(*parameters)
        return out, torch.autograd.grad(out, parameters, cotangent(out))

    mine, my_grads = mix(MetaLAOptions(core_kernel=core_kernel, epilogue_kernel=epilogue_kernel), compile_it=True)
    assert len(calls) == int(one_op)
    expected, expected_grads = reference(*parameters, seq_first=True)
    errors = mix_errors(mine, my_grads, expected, expected_grads, MIX_HEADS)
    assert max(errors.values()) < 1e-10, errors


def test_packed_documents_keep_the_separate_path(monkeypatch):
    """The own core takes no document boundaries: packed documents run fla's varlen core (its CPU kernel here)."""
    monkeypatch.setattr(metala, "choose_backend", lambda requested, tensor: "fla")
    calls = []
    monkeypatch.setattr(mixer_op, "metala_mixer", lambda *args, **kw: calls.append(1))
    projected, gate_bias, aug_balance = mix_parameters()
    starts = torch.zeros(projected.shape[:2], dtype=torch.bool)
    starts[:, 0] = starts[:, 30] = True
    options = MetaLAOptions(core_kernel="metala", epilogue_kernel="triton")
    y = metala.metala_mix(projected, gate_bias, aug_balance, MIX_HEADS, options, document_starts=starts)
    assert calls == [] and y.shape == (70, 2, 16)


@pytest.mark.skipif(
    torch.cuda.is_available(),
    reason="the layer's parameters live on the GPU, where fp64 is no Triton dtype: see test_mixer_triton.py",
)
def test_the_layer_runs_the_op_by_default(monkeypatch, single_rank):
    """A MetaLAMixer with the default options on the fla backend runs the one op once, equal in fp64 to the same
    layer with the compiled epilogue (MetaLA's core op and PyTorch's epilogue), gradients of its parameters too."""
    from mixer_routing import assert_mixer_routes

    calls = []
    op = mixer_op.metala_mixer
    monkeypatch.setattr(mixer_op, "metala_mixer", lambda *args, **kw: calls.append(1) or op(*args, **kw))
    leaves = lambda mixer: (mixer.gate_bias, mixer.aug_balance, mixer.in_proj.weight)  # noqa: E731
    assert_mixer_routes(monkeypatch, "epilogue_kernel", "triton", "compiled", calls, leaves)

"""ops/mixer_out_op.py on the CPU: the token mix and the out projection's GEMM as one op, against the fp64 reference
(ops/reference.py's recurrence and epilogue, then y W_outᵀ): the output and the gradients of the projection,
gate_bias, aug_balance and W_out, with and without self-augmentation, states kept or recomputed; its registrations
under torch.library.opcheck; metala_mix_out's route (the one-op route only, the switch, the shapes); and the layer,
which runs it on that route with the switch on, equal to the layer running the mix and megatron-core's out
projection. The fused GPU kernel: tests/ops/test_out_grad_triton.py; the op on a GPU: tests/ops/test_mixer_triton.py.
"""

import pytest
import torch
from mixer_routing import MIX_HEADS, mix_parameters

from neox_metala.ops import MetaLAOptions, metala, mixer_op, mixer_out_op

from mix_references import reference_mix

F64 = torch.float64
NORMALIZER, EPS = 16.0, 1e-5
HIDDEN = 24  # the out projection's output width, other than the mix's W = 16


def _weight():
    return torch.randn(HIDDEN, 16, dtype=F64, generator=torch.Generator().manual_seed(11), requires_grad=True)


def _cotangent(out):
    return torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("aug", [True, False], ids=["aug", "no-aug"])
@pytest.mark.parametrize("keep_states", [True, False], ids=["kept", "recomputed"])
def test_op_equals_the_fp64_reference(aug, keep_states):
    projected, gate_bias, aug_balance = mix_parameters()
    aug_balance = aug_balance if aug else None
    weight = _weight()
    leaves = [t for t in (projected, gate_bias, aug_balance, weight) if t is not None]
    out = mixer_out_op.metala_mixer_out(
        projected, gate_bias, aug_balance, weight, MIX_HEADS, NORMALIZER, EPS, keep_states
    )
    assert out.shape == (70, 2, HIDDEN)
    grads = torch.autograd.grad(out, leaves, _cotangent(out))
    expected = reference_mix(projected, gate_bias, aug_balance, MIX_HEADS, seq_first=True) @ weight.t()
    expected_grads = torch.autograd.grad(expected, leaves, _cotangent(expected))
    assert torch.allclose(out, expected, rtol=1e-10, atol=1e-12)
    for got, want in zip(grads, expected_grads, strict=True):
        assert ((got - want).norm() / want.norm()).item() < 1e-10


def test_op_registrations_pass_opcheck():
    projected, gate_bias, aug_balance = mix_parameters()
    weight = _weight()
    args = (projected, gate_bias, aug_balance, weight, MIX_HEADS, NORMALIZER, EPS, True)
    torch.library.opcheck(mixer_out_op.mixer_out_forward, args)
    out, mixed, o, stats, states = mixer_out_op.mixer_out_forward(*args)
    detached = [t.detach() for t in (projected, gate_bias, aug_balance, weight)]
    backward_args = (_cotangent(out), detached[0], mixed, o, stats, states, *detached[1:], MIX_HEADS, NORMALIZER)
    torch.library.opcheck(mixer_out_op.mixer_out_backward, backward_args)


def test_metala_mix_out_takes_only_the_one_op_route(monkeypatch):
    """The op where metala_mix would take its one-op route, in one graph under torch.compile (aot_eager: fake
    kernels traced); None off it (another core, packed documents), with the switch off, and for shapes the fused
    kernel does not take (a weight of another width)."""
    monkeypatch.setattr(metala, "choose_backend", lambda requested, tensor: "fla")
    monkeypatch.setattr(mixer_out_op, "FUSED", True)
    projected, gate_bias, aug_balance = mix_parameters()
    weight = _weight()
    own = MetaLAOptions(core_kernel="metala", epilogue_kernel="triton")

    def run(*leaves):
        return metala.metala_mix_out(*leaves[:3], MIX_HEADS, own, leaves[3])

    out = torch.compile(run, backend="aot_eager", fullgraph=True)(projected, gate_bias, aug_balance, weight)
    expected = reference_mix(projected, gate_bias, aug_balance, MIX_HEADS, seq_first=True) @ weight.t()
    assert torch.allclose(out, expected, rtol=1e-10, atol=1e-12)
    starts = torch.zeros(projected.shape[:2], dtype=torch.bool)
    starts[:, 0] = starts[:, 30] = True
    leaves = (projected, gate_bias, aug_balance)
    assert metala.metala_mix_out(*leaves, MIX_HEADS, MetaLAOptions(core_kernel="fla"), weight) is None
    assert metala.metala_mix_out(*leaves, MIX_HEADS, own, weight, document_starts=starts) is None
    assert metala.metala_mix_out(*leaves, MIX_HEADS, own, weight[:, :8]) is None
    monkeypatch.setattr(mixer_out_op, "FUSED", False)
    assert metala.metala_mix_out(*leaves, MIX_HEADS, own, weight) is None


@pytest.mark.skipif(
    torch.cuda.is_available(),
    reason="the layer's parameters live on the GPU, where fp64 is no Triton dtype: see test_mixer_triton.py",
)
def test_the_layer_runs_the_out_op_when_switched_on(monkeypatch, single_rank):
    """A MetaLAMixer with the default options on the fla backend and mixer_out_op.FUSED runs the mix and its out GEMM
    as the one op, equal in fp64 to the same layer with the switch off (mixer_op's op, then megatron-core's
    RowParallelLinear), the gradients of its input and parameters too."""
    from mixer_routing import assert_mixer_routes

    monkeypatch.setattr(mixer_out_op, "FUSED", True)
    calls = []
    op = mixer_out_op.metala_mixer_out
    monkeypatch.setattr(mixer_out_op, "metala_mixer_out", lambda *args, **kw: calls.append(1) or op(*args, **kw))
    monkeypatch.setattr(mixer_op, "CORE_AUG", True)
    leaves = lambda mixer: (mixer.gate_bias, mixer.aug_balance, mixer.in_proj.weight, mixer.out_proj.weight)  # noqa: E731
    switch_off = lambda: monkeypatch.setattr(mixer_out_op, "FUSED", False)  # noqa: E731
    assert_mixer_routes(monkeypatch, "epilogue_kernel", "triton", "triton", calls, leaves, before_theirs=switch_off)

"""The epilogue's custom ops (ops/epilogue_op.py) on the CPU: y and the gradients of o, q, the decay logits, v, the
gate, gate_bias and aug_balance through the op's autograd against ops/metala.py's augment_norm_gate in fp64, at
awkward sizes, with strided views of one projection, y laid out seq-first, without aug_balance or gate_bias; the
registrations under torch.library.opcheck; and the routing of metala_epilogue_kernel="triton" on the fla backend
(the CPU stands in for the GPU) from metala_mix and from the layer, equal to the compiled path's PyTorch epilogue."""

import pytest
import torch

from neox_metala.ops import epilogue_op, metala

F64 = torch.float64
NORMALIZER = 16.0


def draw(batch, seq, heads, head_v_dim, aug=True, bias=True, seed=0):
    """Leaves o, projected (B, T, 3W), gate_bias, aug_balance and a cotangent; the op's inputs are views of them."""
    gen = torch.Generator().manual_seed(seed)
    width = heads * head_v_dim
    o = torch.randn(batch, seq, heads, head_v_dim, dtype=F64, generator=gen)
    projected = torch.randn(batch, seq, 3 * width, dtype=F64, generator=gen)
    projected[..., width // 2 : width] *= 4.0  # decay logits spread over strong and weak decay
    gate_bias = torch.randn(width, dtype=F64, generator=gen) * 0.5 if bias else None
    aug_balance = torch.randn(width // 2, dtype=F64, generator=gen) * 4.0 if aug else None
    cotangent = torch.randn(batch, seq, heads, head_v_dim, dtype=F64, generator=gen)
    return [o, projected, gate_bias, aug_balance], cotangent


def split(projected, heads):
    width = projected.shape[-1] // 3
    parts = projected.split((width // 2, width // 2, width, width), dim=-1)
    return [metala.split_heads(part, heads) for part in parts]  # q, decay logits, v, gate


def run(epilogue, leaves, heads, cotangent):
    leaves = [t.clone().requires_grad_() if t is not None else None for t in leaves]
    o, projected, gate_bias, aug_balance = leaves
    y = epilogue(o, *split(projected, heads), gate_bias, aug_balance)
    used = [t for t in leaves if t is not None]
    return y, torch.autograd.grad(y, used, cotangent)


def with_op(seq_first):
    def epilogue(o, q, logits, v, gate, gate_bias, aug_balance):
        return epilogue_op.augment_norm_gate_op(
            o, q, logits, v, gate, gate_bias, aug_balance, NORMALIZER, seq_first=seq_first
        )

    return epilogue


def with_torch(o, q, logits, v, gate, gate_bias, aug_balance):
    key = metala.decay_and_key(logits, NORMALIZER)[1]
    gate = gate if gate_bias is None else gate + gate_bias.view(gate.shape[-2:])
    return metala.augment_norm_gate(o, q, key, v, aug_balance, gate)


@pytest.mark.parametrize(
    "batch, seq, heads, head_v_dim, aug, bias, seq_first",
    [
        (2, 1, 2, 8, True, True, False),
        (2, 37, 3, 24, True, True, True),
        (1, 5, 1, 6, True, True, False),
        (2, 9, 3, 24, False, True, True),
        (2, 9, 3, 24, True, False, False),
    ],
    ids=["T1", "T37-H3-V24-seq-first", "H1-V6", "no-aug", "no-bias"],
)
def test_op_values_and_gradients_equal_augment_norm_gate(batch, seq, heads, head_v_dim, aug, bias, seq_first):
    leaves, cotangent = draw(batch, seq, heads, head_v_dim, aug, bias)
    mine, my_grads = run(with_op(seq_first), leaves, heads, cotangent)
    expected, expected_grads = run(with_torch, leaves, heads, cotangent)
    if seq_first:  # the out projection's layout: (T, B, H, V) in memory
        assert mine.transpose(0, 1).is_contiguous()
    assert torch.allclose(mine, expected, rtol=1e-12, atol=1e-12)
    for got, want in zip(my_grads, expected_grads):
        assert torch.allclose(got, want, rtol=1e-10, atol=1e-12)


def test_low_precision_dtypes_keep_their_inputs_dtypes():
    """bf16 inputs with fp32 parameters: y and the input gradients in bf16, the parameters' in fp32, each within
    bf16 rounding of the fp64 results on the same (rounded) inputs."""
    leaves, cotangent = draw(2, 20, 2, 16, seed=1)
    o, projected, gate_bias, aug_balance = leaves
    low = [o.bfloat16(), projected.bfloat16(), gate_bias.float(), aug_balance.float()]
    mine, my_grads = run(with_op(False), low, 2, cotangent.bfloat16())
    expected, expected_grads = run(with_torch, [t.double() for t in low], 2, cotangent.bfloat16().double())
    assert mine.dtype == torch.bfloat16
    assert [g.dtype for g in my_grads] == [torch.bfloat16, torch.bfloat16, torch.float32, torch.float32]
    for got, want in zip((mine, *my_grads), (expected, *expected_grads)):
        assert (got.double() - want).norm() <= 2**-7 * want.norm()


@pytest.mark.parametrize("aug", [True, False], ids=["aug", "no-aug"])
def test_op_registrations_pass_opcheck(aug):
    leaves, cotangent = draw(2, 6, 2, 8, aug=aug)
    o, projected, gate_bias, aug_balance = leaves
    q, logits, v, gate = (t.contiguous() for t in split(projected, 2))
    inputs = [o, q, logits, v, gate, gate_bias, aug_balance]
    needs_grad = [t.requires_grad_() if t is not None else None for t in inputs]
    torch.library.opcheck(epilogue_op.epilogue_forward, (*needs_grad, NORMALIZER, 1e-5, True))
    _, stats = epilogue_op.epilogue_forward(*inputs, NORMALIZER, 1e-5, False)
    detached = [t.detach() if t is not None else None for t in inputs]
    torch.library.opcheck(epilogue_op.epilogue_backward, (cotangent, *detached, stats, NORMALIZER))


def test_mismatched_shapes_are_refused():
    leaves, _ = draw(1, 4, 2, 8)
    o, projected, gate_bias, _ = leaves
    q, logits, v, gate = split(projected, 2)
    with pytest.raises(ValueError, match="aug_balance has 3 entries, expected heads \\* head_k_dim = 2 \\* 4"):
        epilogue_op.augment_norm_gate_op(o, q, logits, v, gate, gate_bias, torch.zeros(3, dtype=F64))
    with pytest.raises(ValueError, match="q, gate_logits"):
        epilogue_op.augment_norm_gate_op(o, q, logits[..., :2], v, gate)


def counted(monkeypatch):
    """Counts the calls of the op by ops/metala.py."""
    calls = []
    op = metala.augment_norm_gate_op
    monkeypatch.setattr(metala, "augment_norm_gate_op", lambda *args, **kw: calls.append(1) or op(*args, **kw))
    return calls


@pytest.mark.parametrize(
    "seq_first, compiled", [(False, False), (True, False), (True, True)], ids=["batch-first", "seq-first", "compiled"]
)
def test_epilogue_kernel_option_routes_the_fla_backend_to_the_op(monkeypatch, seq_first, compiled):
    """metala_epilogue_kernel "triton": metala_mix on the fla backend (fla's core, its CPU kernel, under it: with
    MetaLA's own core the two run as ops/mixer_op.py's one op, tests/ops/test_mixer_op.py) runs
    the op once, equal to the PyTorch epilogue in fp64, gradients included, in one graph under torch.compile too
    (aot_eager: the fake kernels and the autograd registration traced); a carried state keeps PyTorch's."""
    from neox_metala import ops

    monkeypatch.setattr(metala, "choose_backend", lambda requested, tensor: "fla")
    calls = counted(monkeypatch)
    from mixer_routing import MIX_HEADS as heads
    from mixer_routing import mix_parameters

    parameters = projected, gate_bias, aug_balance = mix_parameters()

    def mix(epilogue_kernel, compile_it=False):
        options = ops.MetaLAOptions(epilogue_kernel=epilogue_kernel, core_kernel="fla")

        def run_mix(*leaves):
            return metala.metala_mix(*leaves, heads, options, seq_first=seq_first)

        out = (torch.compile(run_mix, backend="aot_eager", fullgraph=True) if compile_it else run_mix)(*parameters)
        return out, torch.autograd.grad(out, parameters, torch.ones_like(out))

    mine, my_grads = mix("triton", compiled)
    assert len(calls) == 1
    expected, expected_grads = mix("compiled")
    assert len(calls) == 1
    assert mine.is_contiguous() and torch.allclose(mine, expected, rtol=1e-12, atol=1e-12)
    for got, want in zip(my_grads, expected_grads):
        assert torch.allclose(got, want, rtol=1e-10, atol=1e-12)
    q, logits, v, gate = split(projected.detach(), heads)
    state = torch.zeros(2, heads, 4, 8, dtype=F64)
    monkeypatch.setattr(metala, "_fla_gla", lambda q, key, v, *args: (torch.zeros_like(v), state))  # no fla on CPU
    metala.token_mix(q, logits, v, gate, aug_balance, initial_state=state, output_final_state=True, backend="fla")
    assert len(calls) == 1


@pytest.mark.skipif(
    torch.cuda.is_available(),
    reason="the layer's parameters live on the GPU, where fp64 is no Triton dtype: see test_epilogue_triton.py",
)
def test_mixer_routes_its_epilogue_by_the_option(monkeypatch, single_rank):
    """epilogue_kernel="triton" on the fla backend runs the op once, equal to the PyTorch epilogue."""
    from mixer_routing import assert_mixer_routes

    calls = counted(monkeypatch)
    leaves = lambda mixer: (mixer.gate_bias, mixer.aug_balance)  # noqa: E731
    assert_mixer_routes(monkeypatch, "epilogue_kernel", "triton", "compiled", calls, leaves, core_kernel="fla")

"""ops.fused in bf16 on the CPU: the fused path's own prologue, epilogue, hand-derived backward and gradient combine
(eager, the math torch.compile fuses on the GPU) around an exact core, against the fp64 reference (ops/reference.py)
with issue 15's acceptance: every gradient within 5e-3 relative. mix_references.py says why the references are
three; the inputs are those of tests/ops/test_fused_gpu.py, drawn on the CPU: seed 0 is well conditioned, seed 3
holds a nearly singular LayerNorm (its first token) that amplifies any error of the core's output."""

import pytest
import torch

from neox_metala import ops
from neox_metala.ops import metala
from neox_metala.ops.fused import EAGER_KERNELS, TorchCore, fused_token_mix

from mix_references import gradient_parts, mix_errors, reference_mix, rel_err

BF16 = torch.bfloat16
ACCEPTANCE = 5e-3
HEADS = 3


@pytest.fixture(autouse=True)
def one_thread():
    """The step-by-step reference runs hundreds of tiny ops, which a second (shared) thread slows down ~10x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class ExactCoreAsFla(TorchCore):
    """The pure-PyTorch core (fp32 inside) handing back what fla's chunk_gla_bwd does, dq, dkey and dlog α in fp32
    and dv in d_output's dtype; keeps its last output for the same-o reference."""

    def forward(self, q, key, v, log_decay, scale, document_starts=None):
        output, saved = super().forward(q, key, v, log_decay, scale, document_starts)
        self.output = output
        return output, saved

    def backward(self, q, key, v, log_decay, scale, saved, d_output, document_starts=None):
        wide = [t.float() for t in (q, key, v, log_decay)]  # exact: upcasts of the values the forward saw
        dq, dkey, dv, dlog_decay = super().backward(*wide, scale, saved, d_output.float(), document_starts)
        return dq, dkey, dv.to(d_output.dtype), dlog_decay


def make_inputs(with_aug, seed, batch=3, seq=100, head_k_dim=64):
    """Distributed as test_fused_gpu.py's: (bf16 inputs, their exact fp64 copies), each list requires grad."""
    gen = torch.Generator().manual_seed(seed)
    width = HEADS * 2 * head_k_dim
    projected = torch.randn(batch, seq, 3 * width, generator=gen)
    projected[..., width // 2 : width] *= 3  # decay logits over a wide range
    gate_bias = torch.randn(width, generator=gen) * 0.5
    aug = torch.randn(width // 2, generator=gen) * 0.5 if with_aug else None
    fast = [projected.to(BF16), gate_bias, aug]
    exact = [t.double() if t is not None else None for t in fast]
    as_leaves = lambda ts: [t.requires_grad_() if t is not None else None for t in ts]
    return as_leaves(fast), as_leaves(exact)


def gradient_errors(ours, expected, fast, exact, seed):
    """{name: relative error} for every gradient under one bf16 cotangent (both sides see the same values)."""
    cotangent = torch.randn(ours.shape, generator=torch.Generator().manual_seed(seed + 1)).to(BF16)
    grads = torch.autograd.grad(ours, [t for t in fast if t is not None], cotangent)
    expected_grads = torch.autograd.grad(expected, [t for t in exact if t is not None], cotangent.double())
    errors = {f"d_{n}": rel_err(g, e) for n, g, e in zip(("gate_bias", "aug_balance"), grads[1:], expected_grads[1:])}
    parts, expected_parts = gradient_parts(grads[0], HEADS), gradient_parts(expected_grads[0], HEADS)
    errors.update({f"d_{n}": rel_err(parts[n], expected_parts[n]) for n in parts})
    errors["d_projected"] = rel_err(grads[0], expected_grads[0])
    return errors


def run_fused(fast):
    core = ExactCoreAsFla()
    kwargs = dict(normalizer=16.0, eps=1e-5, seq_first=True, core=core, kernels=EAGER_KERNELS)
    return fused_token_mix(*fast, HEADS, **kwargs), core


@pytest.mark.parametrize("seed", [0, 3], ids=["well-conditioned", "near-singular-layernorm"])
@pytest.mark.parametrize("with_aug", [True, False], ids=["self-aug", "no-self-aug"])
def test_fused_bf16_math_given_the_cores_output(with_aug, seed):
    """Everything the fused path computes itself, checked apart from the core's forward error: against the fp64
    reference whose recurrence output is replaced by the core's bf16 one, every gradient within 5e-3 (at most 3.7e-3,
    d v, when written; d aug_balance and d gate_bias ~1e-6), on the near-singular inputs too."""
    fast, exact = make_inputs(with_aug, seed)
    ours, core = run_fused(fast)
    expected = reference_mix(*exact, HEADS, seq_first=True, o_value=core.output)
    assert rel_err(ours, expected) <= ACCEPTANCE
    errors = gradient_errors(ours, expected, fast, exact, seed)
    assert max(errors.values()) <= ACCEPTANCE, errors


def run_default_path(fast, monkeypatch):
    """The GPU's unfused path with fla's core, as the fused path has: metala_mix on the fla backend, its core op
    (ops/core_op.py) running its CPU kernel, the exact chunked form (the dispatch is forced: on the CPU it would
    pick the chunked path, fp32 key). Not MetaLA's own core (the default): it never rounds the key to bf16, so it
    is more accurate than any core fed a bf16 key, and the comparison would no longer be core for core."""
    with monkeypatch.context() as patch:
        patch.setattr(metala, "choose_backend", lambda requested, tensor: "fla")
        return ops.metala_mix(*fast, HEADS, ops.MetaLAOptions(core_kernel="fla"), seq_first=True)


@pytest.mark.parametrize("seed", [0, 3], ids=["well-conditioned", "near-singular-layernorm"])
def test_fused_bf16_gradients_equal_fp64(seed, monkeypatch):
    """End to end against the fp64 reference: within 5e-3 on well-conditioned inputs (4.6e-3, d aug_balance, when
    written: the floor's own). On the near-singular ones no core with bf16 key and output can meet 5e-3: the floor
    (that core exact) is 4.7e-2 on d aug_balance, 2.7e-2 on d q; there the fused path must add nothing to it.
    Either way no gradient less accurate than the default path's, given the same exact core."""
    fast, exact = make_inputs(True, seed)
    ours, _ = run_fused(fast)
    errors = gradient_errors(ours, reference_mix(*exact, HEADS, seq_first=True), fast, exact, seed)
    fast_default, exact_default = make_inputs(True, seed)
    default = run_default_path(fast_default, monkeypatch)
    expected = reference_mix(*exact_default, HEADS, seq_first=True)
    default_errors = gradient_errors(default, expected, fast_default, exact_default, seed)
    for name, err in errors.items():
        assert err <= 1.25 * default_errors[name] + 1e-3, (name, err, default_errors[name])
    floor_inputs = [t.detach().requires_grad_() if t is not None else None for t in exact]
    floor = reference_mix(*floor_inputs, HEADS, seq_first=True, bf16_core_io=True)
    floors = gradient_errors(floor, reference_mix(*exact, HEADS, seq_first=True), floor_inputs, exact, seed)
    if seed == 0:
        assert max(errors.values()) <= ACCEPTANCE, errors
    else:
        assert floors["d_aug_balance"] > 2 * ACCEPTANCE, floors  # what makes these inputs the hard case
        for name, err in errors.items():
            assert err <= max(ACCEPTANCE, 1.1 * floors[name]), (name, err, floors[name])


@pytest.mark.parametrize("variant", ["exact", "bf16-core-io", "given-o"])
def test_chunked_references_equal_step_by_step_ones(variant):
    """The GPU tests' references run the recurrence in chunked form (fast there): the same numbers in fp64, values
    and every gradient, in each of mix_references' three variants."""
    _, exact = make_inputs(True, seed=3)
    o_value = torch.randn(100, 3, HEADS, 128, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    kwargs = {"bf16-core-io": dict(bf16_core_io=True), "given-o": dict(o_value=o_value.transpose(0, 1))}.get(
        variant, {}
    )
    cotangent = torch.randn(100, 3, HEADS * 128, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    results = []
    for chunk_size in (None, 64):
        leaves = [t.detach().requires_grad_() for t in exact]
        y = reference_mix(*leaves, HEADS, seq_first=True, chunk_size=chunk_size, **kwargs)
        results.append((y, torch.autograd.grad(y, leaves, cotangent)))
    errors = mix_errors(*results[1], *results[0], HEADS)
    assert max(errors.values()) <= 1e-12, errors

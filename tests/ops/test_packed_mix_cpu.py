"""The GPU test of packed documents (test_ops_gpu.py::test_packed_documents_equal_each_document_alone, its check in
packed_mix.py) run on the CPU kernels standing in for fla's: the core op's CPU kernel (the chunked form) for the
separate-kernel path, the pure-PyTorch core and eager steps for the fused Function, both in bf16. The check passes
with the reset, and fails by a wide margin without it, or with a reset in the forward only."""

import pytest

from neox_metala import ops
from neox_metala.ops import metala
from neox_metala.ops.fused import EAGER_KERNELS, TorchCore, fused_token_mix

from packed_mix import ITSELF_TOLERANCE, failures, packed_check

HEADS = 4
HEAD_K_DIM = 16  # the GPU test's is 64: the check's logic is the same, four times narrower runs ~5x faster here


class ForwardOnlyReset(TorchCore):
    """A core whose backward forgets the document starts: gradients flow from one document into the one before."""

    def backward(self, q, key, v, log_decay, scale, saved, d_output, document_starts=None):
        return super().backward(q, key, v, log_decay, scale, saved, d_output)


def cpu_mix(path, monkeypatch, core=None):
    if path == "fused":

        def mix(projected, gate_bias, aug, starts):
            kwargs = dict(normalizer=16.0, eps=1e-5, seq_first=False, kernels=EAGER_KERNELS, document_starts=starts)
            return fused_token_mix(projected, gate_bias, aug, HEADS, core=core or TorchCore(), **kwargs)

        return mix
    # metala_mix as on a GPU: its core op (ops/core_op.py), whose CPU kernel is the chunked form; fla's core for the
    # documents alone too, as packed documents always take it (test_ops_gpu.py's check does the same)
    monkeypatch.setattr(metala, "choose_backend", lambda requested, tensor: "fla")
    options = ops.MetaLAOptions(core_kernel="fla")
    return lambda projected, gate_bias, aug, starts: ops.metala_mix(
        projected, gate_bias, aug, HEADS, options, seq_first=False, document_starts=starts
    )


def report(rows):
    for comparison, part, err, bound in rows:
        print(f"packed-cpu-{comparison}-{part} {err:.3e}" + (f" (bound {bound:.1e})" if bound else ""))
    return {(comparison, part): err for comparison, part, err, _ in rows}


@pytest.mark.parametrize("path", ["separate-kernels", "fused"])
def test_gpu_packed_check_passes_on_cpu_kernels(path, monkeypatch):
    rows = packed_check(cpu_mix(path, monkeypatch), HEADS, head_k_dim=HEAD_K_DIM)
    errors = report(rows)
    assert not failures(rows), failures(rows)
    # ~1e-4 here, where the CPU kernels' chunks do not even start at each document as fla's varlen chunks do:
    # the itself bound (2^-8) leaves room for other summation orders
    assert max(err for (comparison, _), err in errors.items() if comparison == "itself") <= ITSELF_TOLERANCE / 4


@pytest.mark.parametrize("path", ["separate-kernels", "fused"])
def test_gpu_packed_check_fails_without_the_reset(path, monkeypatch):
    rows = packed_check(cpu_mix(path, monkeypatch), HEADS, head_k_dim=HEAD_K_DIM, reset=False, against_fp64=False)
    errors = report(rows)
    assert failures(rows)
    for part in ("output", "grad-projected", "grad-gate_bias", "grad-aug_balance"):  # ~0.2-0.6: a wide margin
        assert errors["itself", part] > 10 * ITSELF_TOLERANCE, part


def test_gpu_packed_check_fails_with_a_reset_in_the_forward_only(monkeypatch):
    mix = cpu_mix("fused", monkeypatch, core=ForwardOnlyReset())
    rows = packed_check(mix, HEADS, head_k_dim=HEAD_K_DIM, against_fp64=False)
    errors = report(rows)
    assert failures(rows)
    assert errors["itself", "output"] <= ITSELF_TOLERANCE  # the forward is right ...
    assert errors["itself", "grad-projected"] > 10 * ITSELF_TOLERANCE  # ... the backward is not (~1.5)

"""MetaLA's core Triton kernels (ops/metala_core_triton.py) against the fp64 recurrence: the output and every
gradient (dq, dv, d log_decay with the key's path), at awkward sizes, for draws whose chunks take the factorised
form, the exact (sub-chunk) form, or both (metala_core_draws.py).

Runs natively on a CUDA GPU (bf16 and fp32, larger shapes), or on the CPU through the Triton interpreter when
TRITON_INTERPRET=1 is set before the run (fp32 and small shapes only: the interpreter's bf16 arithmetic is not
the GPU's). Skips without triton, and on a CPU without the interpreter (the project's CPU suite).
"""

import metala_core_draws
import pytest
import torch
import triton_runs

from neox_metala.ops import metala_core, reference
from neox_metala.ops.chunked import chunked_gla

pytestmark = triton_runs.MARKS
DEVICE = triton_runs.DEVICE
F64 = torch.float64
SCALE = 0.3
# (relative bound, bound relative to ‖q ⊙ dq‖ for d log_decay): d log_decay is a difference of terms of that size
# which cancel under strong decay, so its floor is the dtype's rounding of those terms (as in fla's dg)
BOUNDS = {torch.float32: (1e-5, 1e-6), torch.bfloat16: (1e-2, 3e-3), torch.float16: (3e-3, 1e-3)}


def draw(batch, seq, heads, head_k_dim, head_v_dim, decay, seed=0):
    """fp64 q, log_decay, v (metala_core_draws.draw) and a cotangent, on the test's device."""
    q, log_decay, v = metala_core_draws.draw(batch, seq, heads, head_k_dim, head_v_dim, decay, seed)
    cotangent = torch.randn(v.shape, dtype=F64, generator=torch.Generator().manual_seed(seed + 1))
    return [t.to(DEVICE) for t in (q, log_decay, v, cotangent)]


def exact(q, log_decay, v, cotangent):
    """fp64 output and gradients: the step-by-step recurrence, or for long draws the pairwise chunked form."""
    inputs = [t.detach().requires_grad_() for t in (q, log_decay, v)]
    key = metala_core.key_from_log_decay(inputs[1])
    if q.shape[1] <= 512:
        output, _ = reference.recurrent_gla_reference(inputs[0], key, inputs[2], inputs[1], SCALE)
    else:
        output, _ = chunked_gla(inputs[0], key, inputs[2], inputs[1], SCALE, chunk_size=64)
    return output, torch.autograd.grad(output, inputs, cotangent)


def check(dtype, batch, seq, heads, head_k_dim, head_v_dim, decay):
    from neox_metala.ops import metala_core_triton

    q, log_decay, v, cotangent = draw(batch, seq, heads, head_k_dim, head_v_dim, decay)
    q, v = q.to(dtype).double(), v.to(dtype).double()  # the reference sees the kernel's rounded inputs
    expected, expected_grads = exact(q, log_decay, v, cotangent)
    inputs = [q.to(dtype), log_decay.float(), v.to(dtype)]
    output, states = metala_core_triton.metala_core_fwd(*inputs, SCALE, keep_states=True)
    grads = metala_core_triton.metala_core_bwd(*inputs, SCALE, cotangent.to(dtype))
    relative, floor = BOUNDS[dtype]
    errors = {"output": (output.double() - expected).norm() / expected.norm()}
    floors = {"q": 0.0, "log_decay": floor * (q * expected_grads[0]).norm(), "v": 0.0}
    for name, got, want in zip(("q", "log_decay", "v"), grads, expected_grads):
        assert torch.isfinite(got).all(), name
        errors[name] = (got.double() - want).norm() / (relative * want.norm() + floors[name]) * relative
    print(
        f"TRITON-CORE {dtype} B{batch} T{seq} H{heads} K{head_k_dim} V{head_v_dim} {decay}:",
        " ".join(f"{name} {error:.2e}" for name, error in errors.items()),
    )
    assert all(error <= relative for error in errors.values()), errors
    with_states = metala_core_triton.metala_core_bwd(*inputs, SCALE, cotangent.to(dtype), states=states)
    for got, recomputed in zip(with_states, grads):
        assert torch.equal(got, recomputed)  # the forward's states are the ones the backward recomputes


SMALL = [
    pytest.param(1, 16, 32, "mild", id="T1-mild"),
    pytest.param(63, 16, 32, "mild", id="T63-mild"),
    pytest.param(65, 16, 32, "mild", id="T65-mild"),
    pytest.param(130, 16, 32, "mild", id="T130-mild"),
    pytest.param(130, 20, 24, "mild", id="T130-K20-V24-mild"),
    pytest.param(70, 64, 32, "mixed", id="T70-K64-mixed"),  # the scans' K blocks (K = 64 over blocks of 32)
    pytest.param(63, 16, 32, "strong", id="T63-strong"),
    pytest.param(130, 16, 32, "strong", id="T130-strong"),
    pytest.param(130, 16, 32, "mixed", id="T130-mixed"),
    # exact chunks whose pairs across sub-chunks matter, beside channels of log decay −50 per token
    pytest.param(100, 20, 24, "moderate", id="T100-K20-V24-moderate"),
    pytest.param(63, 16, 32, "graded", id="T63-graded"),
    pytest.param(130, 20, 24, "graded", id="T130-K20-V24-graded"),
]


@pytest.fixture(params=[True, False], ids=["split-dv", "fused-dv"])
def dv_form(request, monkeypatch):
    """The backward's dv by its own kernel or in the V loop of dq's (metala_core_triton.SPLIT_DV)."""
    from neox_metala.ops import metala_core_triton

    monkeypatch.setattr(metala_core_triton, "SPLIT_DV", request.param)


@pytest.mark.parametrize("seq, head_k_dim, head_v_dim, decay", SMALL)
def test_kernels_fp32_equal_the_recurrence(seq, head_k_dim, head_v_dim, decay, dv_form):
    check(torch.float32, 1, seq, 2, head_k_dim, head_v_dim, decay)


GPU_ONLY = pytest.mark.skipif(DEVICE != "cuda", reason="larger shapes and bf16: GPU only")


@GPU_ONLY
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("seq, head_k_dim, head_v_dim, decay", SMALL)
def test_kernels_half_precision_within_bounds(seq, head_k_dim, head_v_dim, decay, dtype, dv_form):
    check(dtype, 2, seq, 3, head_k_dim, head_v_dim, decay)


@GPU_ONLY
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize(
    "batch, seq, decay",
    [(2, 300, "mild"), (2, 300, "mixed"), (1, 2048, "mild"), (1, 2048, "mixed")],
    ids=["B2-T300-mild", "B2-T300-mixed", "B1-T2048-mild", "B1-T2048-mixed"],
)
def test_kernels_at_model_widths(dtype, batch, seq, decay, dv_form):
    check(dtype, batch, seq, 3, 64, 128, decay)


def test_inputs_are_checked():
    from neox_metala.ops import metala_core_triton

    q = torch.zeros(1, 4, 1, 16, device=DEVICE)
    with pytest.raises(ValueError, match="log_decay must be float32"):
        metala_core_triton.metala_core_fwd(q, q.double(), q, SCALE)
    with pytest.raises(ValueError, match="same B, T, H"):
        metala_core_triton.metala_core_fwd(q, q, q[:, :3], SCALE)


@GPU_ONLY
@pytest.mark.parametrize("keep_states", [False, True], ids=["recomputed", "kept"])
def test_custom_op_runs_the_kernels(keep_states):
    """ops/metala_core_op.py on CUDA tensors: its autograd gives the launchers' own output and gradients."""
    from neox_metala.ops import metala_core_op, metala_core_triton

    q, log_decay, v, cotangent = draw(2, 200, 3, 64, 128, "mixed")
    q, log_decay, v, cotangent = q.bfloat16(), log_decay.float(), v.bfloat16(), cotangent.bfloat16()
    leaves = [t.detach().requires_grad_() for t in (q, v, log_decay)]
    output = metala_core_op.metala_core(*leaves, SCALE, keep_states=keep_states)
    grads = torch.autograd.grad(output, leaves, cotangent)
    expected, _ = metala_core_triton.metala_core_fwd(q, log_decay, v, SCALE)
    dq, d_log_decay, dv = metala_core_triton.metala_core_bwd(q, log_decay, v, SCALE, cotangent)
    assert torch.equal(output, expected)
    for got, want in zip(grads, (dq, dv, d_log_decay)):
        assert torch.equal(got, want)


@pytest.mark.skipif(DEVICE == "cuda", reason="on a GPU every test above autotunes for real")
def test_autotuning_every_configuration_keeps_the_results_exact(monkeypatch):
    """The state scan works in place on its updates, so the autotuner, which times each configuration on the real
    buffers, must restore them (restore_value). In the interpreter (which cannot time): every configuration of every
    kernel, those of both dv forms, run twice through the autotuner's own timing path, the last one reported fastest
    and so kept; then the result must still be the recurrence's."""
    import triton.runtime.autotuner as autotuner

    from neox_metala.ops import metala_core_triton

    timed = []

    def run_twice(kernel_call, quantiles):
        kernel_call()
        kernel_call()  # a second run on the buffer: without the restore it would scan the first run's states
        timed.append(kernel_call)
        return [1.0 / len(timed)] * len(quantiles)

    monkeypatch.setattr(metala_core_triton, "FIRST_CONFIG_ONLY", False)
    monkeypatch.setattr(autotuner.Autotuner, "do_bench", property(lambda self: run_twice))
    metala_core_triton._kernels.cache_clear()
    try:
        for split_dv in (True, False):
            monkeypatch.setattr(metala_core_triton, "SPLIT_DV", split_dv)
            check(torch.float32, 1, 130, 2, 20, 24, "graded")
        for name, kernel in metala_core_triton._kernels().items():
            assert len(kernel.configs) > 1 and kernel.best_config == kernel.configs[-1], name
    finally:
        metala_core_triton._kernels.cache_clear()  # the other tests' single configurations again

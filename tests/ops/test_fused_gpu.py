"""The GPU paths of ops.metala_mix — the default (MetaLA's own core kernels + compiled elementwise), the same with
fla's chunk_gla as core, and the fused one (ops/fused.py: compiled prologue/epilogue around fla's kernels) —
against the fp64 reference on the same inputs, forward and every gradient, at awkward sizes; and the compiled
steps against their eager selves. Skips without a GPU. Run with -s for the `GPU-ERR` lines.

Each gradient is reported against three references (tests/ops/mix_references.py says why):
  * `fp64`: the acceptance's (issue 15: every gradient within 5e-3 for the GPU default). Asserted within 1e-2
    where the inputs allow it, i.e. where the floor is within 5e-3: these random inputs can hold a nearly singular
    per-head LayerNorm (the recurrence output and the self-augmentation cancel at a first token), where any core
    with bf16 key and output is 1-5e-2 off fp64 (tests/ops/test_fused_precision_cpu.py, on the CPU). Such draws fit
    what failed here before (1.76e-2 at T2048, 3.43e-2 on aug_balance at B3-T100-H3, with the T2048 and B3-T100-H3
    floors unknown: docs/gpu-logs/fused-tests-h100-2026-11-22.txt), read then as the fused path's error although
    the test as committed called metala_mix with its default options, i.e. the unfused path.
  * `same-o`: fp64 with the core's own output in place of the exact one: the path's elementwise math and fla's
    backward, apart from the conditioning of the forward. Asserted within 1e-2 everywhere (5e-3 is the goal; a
    gradient that is ~0 in exact arithmetic, d q at T=1 without self-augmentation, can sit just above it).
  * `floor`: an exact core with bf16 key and output; printed, to tell a near-singular draw from a real error.
The fused path's gradients must be no less accurate than the unfused path's on the same core (fla's) and inputs:
that, and the printed numbers against the 5e-3 goal, decide whether the fused path becomes the GPU default.

Time: each draw's fp64 references run once (the exact one serves the floor and both paths), with the recurrence in
its chunked form, equal to the step-by-step one to ~1e-14 in fp64 (mix_references.py): the step-by-step loop, six
times per case, kept this file past 170 s on an H200. A `GPU-TIME` line per case says where the seconds go (a
path's time includes its first call's compilation and autotuning on that shape).
"""

import time

import pytest
import torch

from neox_metala import ops
from neox_metala.ops import fused

from mix_references import mix_errors, reference_mix, rel_err, split_projected

pytestmark = pytest.mark.gpu
TOLERANCE = {torch.bfloat16: 1e-2, torch.float16: 1e-2}
ACCEPTANCE = 5e-3
ASSERTED = ("output", "grad-projected", "grad-gate_bias", "grad-aug_balance")
REFERENCE_CHUNK = 64
# The unfused paths by core: the default (MetaLA's own core kernels) and fla's, the fused path's core, which the
# fused path is compared with (same core, so any difference is the fused path's own)
CORE_KERNELS = {"default": ops.MetaLAOptions().core_kernel, "unfused-fla": "fla"}
PATHS = (*CORE_KERNELS, "fused")


def make_inputs(batch, seq, heads, head_k_dim, dtype, with_aug, seed=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    width = heads * 2 * head_k_dim
    projected = torch.randn(batch, seq, 3 * width, device="cuda", generator=gen)
    projected[..., width // 2 : width] *= 3
    gate_bias = torch.randn(width, device="cuda", generator=gen) * 0.5
    aug = torch.randn(width // 2, device="cuda", generator=gen) * 0.5 if with_aug else None
    fast = [projected.to(dtype), gate_bias, aug]
    exact = [t.double() if t is not None else None for t in fast]
    as_leaves = lambda ts: [t.requires_grad_() if t is not None else None for t in ts]
    return as_leaves(fast), as_leaves(exact)


class RecordingCore(fused.FlaCore):
    """fla's core as the fused path runs it, keeping its output for the same-o reference."""

    def forward(self, *args):
        self.output, saved = super().forward(*args)
        return self.output, saved


def run_path(path, fast, heads):
    """(y (T, B, W), the core's output o) of one path; metala_mix's own calls, o recomputed or recorded."""
    if path == "fused":
        core = RecordingCore()
        y = fused.fused_token_mix(*fast, heads, normalizer=16.0, eps=1e-5, seq_first=True, core=core)
        return y, core.output
    core_kernel = CORE_KERNELS[path]
    y = ops.metala_mix(*fast, heads, ops.MetaLAOptions(fused_kernels=False, core_kernel=core_kernel), seq_first=True)
    q, logits, v, _ = split_projected(fast[0].detach(), heads)
    log_decay, key = ops.decay_and_key(logits)
    with torch.no_grad():  # both cores' forwards are deterministic: the o the path's token_mix computed
        o, _ = ops.gla_recurrence(q, key, v, log_decay, core_kernel=core_kernel, gate_logits=logits)
    return y, o


def worst(errors):
    """The largest error of what the tests assert on: the output and the gradients of the three inputs. The parts
    of d projected (q, decay logits, v, gate) are printed only: some are ~0 in exact arithmetic (at T=1 without
    self-augmentation, LayerNorm(c·v) does not depend on c = scale·q·key), where a relative error means nothing."""
    return max(errors[part] for part in ASSERTED if part in errors)


def reference(exact, cotangent, heads, **reference_kwargs):
    """(y, gradients) of reference_mix(**reference_kwargs) on fresh fp64 leaves under the one cotangent; the
    recurrence in its chunked form, exact in fp64 and ~100x fewer kernels than step by step (mix_references.py)."""
    leaves = [t.detach().requires_grad_() for t in exact if t is not None]
    with_none = iter(leaves)
    inputs = [next(with_none) if t is not None else None for t in exact]
    y = reference_mix(*inputs, heads, seq_first=True, chunk_size=REFERENCE_CHUNK, **reference_kwargs)
    return y.detach(), torch.autograd.grad(y, leaves, cotangent.double())


@pytest.mark.parametrize("with_aug", [True, False], ids=["self-aug", "no-self-aug"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize(
    "batch,seq,heads,head_k_dim",
    [
        pytest.param(2, 63, 4, 64, id="T63"),
        pytest.param(1, 1, 2, 64, id="T1"),
        pytest.param(2, 2048, 4, 64, id="T2048"),
        pytest.param(3, 100, 3, 64, id="B3-T100-H3"),
    ],
)
def test_paths_equal_reference(batch, seq, heads, head_k_dim, dtype, with_aug):
    fast, exact = make_inputs(batch, seq, heads, head_k_dim, dtype, with_aug)
    name = f"B{batch}-T{seq}-H{heads}-dk{head_k_dim}-{str(dtype)[6:]}-{'aug' if with_aug else 'noaug'}"
    # One cotangent, rounded to the kernel dtype once: the references see exactly what the kernels see.
    shape = (seq, batch, fast[0].shape[-1] // 3)
    cotangent = torch.randn(shape, device="cuda", generator=torch.Generator("cuda").manual_seed(1)).to(dtype)
    started = time.perf_counter()
    expected = reference(exact, cotangent, heads)  # once per draw: both paths and the floor measure against it
    floors = mix_errors(*reference(exact, cotangent, heads, bf16_core_io=True), *expected, heads)
    for part, err in floors.items():
        print(f"GPU-ERR floor-{name}-{part} {err:.3e}")
    well_conditioned = worst(floors) <= ACCEPTANCE
    seconds = {"references": time.perf_counter() - started}
    measured, same_o = {}, {}
    for path in PATHS:
        started = time.perf_counter()
        ours, core_output = run_path(path, fast, heads)
        grads = torch.autograd.grad(ours, [t for t in fast if t is not None], cotangent)
        measured[path] = mix_errors(ours, grads, *expected, heads)
        seconds[path] = time.perf_counter() - started
        started = time.perf_counter()
        same_o[path] = mix_errors(ours, grads, *reference(exact, cotangent, heads, o_value=core_output), heads)
        seconds["references"] += time.perf_counter() - started
        for part, err in measured[path].items():
            print(f"GPU-ERR {path}-{name}-{part} {err:.3e} (same-o {same_o[path][part]:.3e})")
    print(f"GPU-TIME {name} " + " ".join(f"{k} {v:.1f}s" for k, v in seconds.items()))
    for path in PATHS:
        assert worst(same_o[path]) <= TOLERANCE[dtype], (path, same_o[path])
        if well_conditioned:
            assert worst(measured[path]) <= TOLERANCE[dtype], (path, measured[path])
    for errors in [same_o] + ([measured] if well_conditioned else []):
        for part in ASSERTED[1:]:  # the fused path no less accurate than the unfused one on its core
            fused_err, unfused_err = errors["fused"].get(part, 0.0), errors["unfused-fla"].get(part, 0.0)
            assert fused_err <= 1.25 * unfused_err + 1e-3, (part, fused_err, unfused_err)


@pytest.mark.parametrize("dtype", [torch.bfloat16], ids=["bf16"])
def test_compiled_steps_equal_eager_steps(dtype):
    """The same fla core around torch.compile'd and eager prologue/epilogue/backward steps: forward and every
    gradient (the compiled steps are the fused path's only GPU-specific math)."""
    fast, _ = make_inputs(2, 130, 4, 64, dtype, True, seed=3)
    kwargs = dict(normalizer=16.0, eps=1e-5, seq_first=True)
    compiled = fused.fused_token_mix(*fast, 4, **kwargs)
    eager = fused.fused_token_mix(*fast, 4, **kwargs, kernels=fused.EAGER_KERNELS)
    cotangent = torch.randn(eager.shape, device="cuda", generator=torch.Generator("cuda").manual_seed(1)).to(dtype)
    errors = {"output": rel_err(compiled, eager.double())}
    grads = torch.autograd.grad(compiled, fast, cotangent)
    eager_grads = torch.autograd.grad(eager, fast, cotangent)
    for part, grad, eager_grad in zip(("projected", "gate_bias", "aug_balance"), grads, eager_grads):
        errors[f"grad-{part}"] = rel_err(grad, eager_grad.double())
    for part, err in errors.items():
        print(f"GPU-ERR compiled-vs-eager-{str(dtype)[6:]}-{part} {err:.3e}")
    assert max(errors.values()) <= 1e-2, errors

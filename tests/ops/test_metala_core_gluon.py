"""The qk gradients' Gluon kernel (ops/metala_core_gluon.py) in metala_core_bwd as the model calls it (K 64, V 128,
bf16, self-augmentation's terms, the gradients written into views of one projection's gradient) against the fp64
recurrence through autograd, with the augmentation's a = Σ_k q·key·w (ops/epilogue_kernels.py) under its own random
cotangent da; at a partial last chunk, one token, and beside chunks of strong decay (the Triton kernel's launch).
GPU only (sm90): the interpreter runs no Gluon.
"""

import metala_core_draws
import pytest
import torch
import triton_runs
from test_metala_core_triton import SCALE
from test_metala_core_triton import exact as core_exact

from neox_metala.ops import reference

pytestmark = [
    *triton_runs.MARKS,
    pytest.mark.skipif(
        triton_runs.DEVICE != "cuda" or torch.cuda.get_device_capability() != (9, 0), reason="an sm90 GPU only"
    ),
]
F64 = torch.float64
NORMALIZER = 16.0
RELATIVE, FLOOR = 1e-2, 3e-3  # test_metala_core_triton.py's bf16 bounds


def draw(batch, seq, heads, decay, seed=0):
    """fp64 q, gate logits, v (rounded to bf16), the output's cotangent, da, aug_balance."""
    q, logits, v = metala_core_draws.draw_logits(batch, seq, heads, 64, 128, decay, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    cotangent = torch.randn(v.shape, dtype=F64, generator=gen)
    da = torch.randn(batch, seq, heads, dtype=F64, generator=gen)
    w = torch.randn(heads * 64, dtype=F64, generator=gen) * 0.5
    return [t.to(torch.bfloat16).double().cuda() for t in (q, logits, v)] + [t.cuda() for t in (cotangent, da, w)]


def exact(q, logits, v, cotangent, da, w):
    """fp64 dq, d gate logits, dv of Σ output · cotangent (test_metala_core_triton.exact) + Σ a · da."""
    _, (dq, d_logits, dv) = core_exact(q, logits, v, cotangent, NORMALIZER)
    inputs = [t.detach().requires_grad_() for t in (q, logits)]
    _, key = reference.decay_and_key_reference(inputs[1], NORMALIZER)
    a = (inputs[0] * key * w.view(q.shape[2], 64)).sum(-1)
    aug_dq, aug_d_logits = torch.autograd.grad((a * da).sum(), inputs)
    return dq + aug_dq, d_logits + aug_d_logits, dv


def projection_grads(batch, seq, heads):
    """dq, d logits, dv as views of one bf16 projection gradient [dq | d logits | dv | d gate] (B, T, 384 H): dq and
    d logits filled with NaN (the kernels must write them), dv with zeros (the dv kernels add to it)."""
    widths = [heads * 64, heads * 64, heads * 128, heads * 128]
    d_projected = torch.full((batch, seq, sum(widths)), float("nan"), dtype=torch.bfloat16, device="cuda")
    parts = [part.unflatten(-1, (heads, -1)) for part in d_projected.split(widths, dim=-1)[:3]]
    parts[2].zero_()
    return parts


@pytest.mark.parametrize(
    "batch, seq, heads, decay",
    [(2, 130, 3, "mild"), (2, 130, 3, "mixed"), (1, 1, 2, "mild"), (2, 2048, 4, "mild")],
    ids=["T130-mild", "T130-mixed", "T1", "T2048"],
)
@pytest.mark.parametrize("kept", [True, False], ids=["kept", "recomputed"])
def test_gluon_qk_gradients_equal_the_recurrence(batch, seq, heads, decay, kept, monkeypatch):
    from neox_metala.ops import metala_core_gluon, metala_core_triton

    monkeypatch.setattr(metala_core_gluon, "GLUON_QK_GRADS", True)
    q, logits, v, cotangent, da, w = draw(batch, seq, heads, decay)
    want = exact(q, logits, v, cotangent, da, w)
    inputs = [t.to(torch.bfloat16) for t in (q, logits, v)]
    states = metala_core_triton.metala_core_fwd(*inputs, SCALE, NORMALIZER, keep_states=True)[1] if kept else None
    grads = projection_grads(batch, seq, heads)
    before = metala_core_gluon.launches
    metala_core_triton.metala_core_bwd(
        *inputs, SCALE, NORMALIZER, cotangent.to(torch.bfloat16), states=states, grads=grads, accumulate=True,
        augmentation=(da.float(), w.float()),
    )  # fmt: skip
    assert metala_core_gluon.launches > before  # the Gluon kernel took the factorised chunks
    # d logits = d log_decay · sigmoid(−x) / normalizer: d log_decay's floor carried through the same factor
    floors = [0.0, FLOOR * (q * want[0] * torch.sigmoid(-logits) / NORMALIZER).norm(), 0.0]
    errors = {}
    for name, got, expected, floor in zip(("dq", "d logits", "dv"), grads, want, floors):
        assert torch.isfinite(got).all(), name
        errors[name] = ((got.double() - expected).norm() / (RELATIVE * expected.norm() + floor) * RELATIVE).item()
    print(f"GLUON-QK B{batch} T{seq} H{heads} {decay} kept={kept}:", {k: f"{e:.2e}" for k, e in errors.items()})
    assert all(error <= RELATIVE for error in errors.values()), errors


def test_switch_off_takes_the_triton_kernel(monkeypatch):
    """GLUON_QK_GRADS off: no Gluon launch, and the Triton kernel's gradients equal the Gluon kernel's to bf16's
    rounding of the stored gradients."""
    from neox_metala.ops import metala_core_gluon, metala_core_triton

    q, logits, v, cotangent, da, w = draw(2, 256, 2, "mild")
    inputs = [t.to(torch.bfloat16) for t in (q, logits, v)]
    by_kernel = {}
    for switch in (True, False):
        monkeypatch.setattr(metala_core_gluon, "GLUON_QK_GRADS", switch)
        before = metala_core_gluon.launches
        by_kernel[switch] = metala_core_triton.metala_core_bwd(
            *inputs, SCALE, NORMALIZER, cotangent.to(torch.bfloat16), augmentation=(da.float(), w.float())
        )
        assert (metala_core_gluon.launches > before) == switch
    for gluon, triton in zip(by_kernel[True], by_kernel[False]):
        error = ((gluon.double() - triton.double()).norm() / triton.double().norm()).item()
        assert error <= 2**-7, error


def test_direct_launches_equal_normal_launches(monkeypatch):
    """The Gluon kernel through ops/triton_launch.py's direct path (its function a GluonJITFunction, which
    triton_launch takes as a JITFunction): a plan is made for it, and the gradients are bitwise the normal path's."""
    from neox_metala.ops import metala_core_gluon, metala_core_triton, triton_launch

    monkeypatch.setattr(metala_core_gluon, "GLUON_QK_GRADS", True)
    q, logits, v, cotangent, da, w = draw(2, 300, 3, "mild")
    inputs = [t.to(torch.bfloat16) for t in (q, logits, v)]

    def backward():
        return metala_core_triton.metala_core_bwd(
            *inputs, SCALE, NORMALIZER, cotangent.to(torch.bfloat16), augmentation=(da.float(), w.float())
        )

    monkeypatch.setattr(triton_launch, "ENABLED", False)
    expected = backward()
    monkeypatch.setattr(triton_launch, "ENABLED", True)
    for attempt in range(2):
        got = backward()
        assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True)), f"call {attempt}"
    plans = [plan for key, plan in triton_launch._plans.items() if key[0] is metala_core_gluon._kernel()]
    assert plans and None not in plans

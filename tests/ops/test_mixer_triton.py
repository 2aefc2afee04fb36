"""ops/mixer_op.py's Triton path (MetaLA's core and epilogue kernels, the projection's gradient written by the
epilogue's backward kernel and added to by the core's gradient kernels) against the fp64 reference
(tests/ops/mix_references.py): the output and the gradients of the projection, gate_bias and aug_balance, fp32
(tight) and bf16 (within its rounding), with and without self-augmentation, states kept or recomputed, at T = 1 and
a partial second chunk; and against the two separate ops' Triton path on the same inputs.

Runs natively on a CUDA GPU (the model's shape as well), or on the CPU through the Triton interpreter when
TRITON_INTERPRET=1 is set before the run; skips otherwise (the project's CPU suite: tests/ops/test_mixer_op.py).
"""

import pytest
import torch
import triton_runs

from neox_metala.ops import epilogue_op, mixer_op

from mix_references import mix_errors, reference_mix

pytestmark = triton_runs.MARKS
DEVICE = triton_runs.DEVICE
NORMALIZER, EPS = 16.0, 1e-5
# norm-relative, against fp64: fp32 kernels (IEEE dots; a GPU's sums in another order: 1.02e-5 on an H200) to a few
# units of fp32 rounding; bf16 inputs and outputs within a few bf16 units (2^-8). At T = 1 with self-augmentation the
# LayerNorm is nearly singular (mix_references.py: 3.5e-2 on an H200 for any core with bf16 input and output), so
# bf16 is checked at T = 70 only; test_fused_gpu.py measures the default path with that floor at several shapes.
BOUNDS = {torch.float32: 3e-5, torch.bfloat16: 3e-2}
ASSERTED = ("output", "grad-projected", "grad-gate_bias", "grad-aug_balance")


def draw(dtype, batch, seq, heads, head_v_dim, aug, seed=0):
    gen = torch.Generator().manual_seed(seed)
    width = heads * head_v_dim
    projected = torch.randn(batch, seq, 3 * width, generator=gen)
    projected[..., width // 2 : width] *= 3.0  # spread the decay logits
    gate_bias = torch.randn(width, generator=gen) * 0.5
    aug_balance = torch.randn(width // 2, generator=gen) * 0.5 if aug else None
    dy = torch.randn(seq, batch, width, generator=gen)  # the out projection's (T, B, W) gradient
    to = lambda t: t.to(DEVICE, dtype) if t is not None else None  # noqa: E731
    return to(projected), gate_bias.to(DEVICE), aug_balance.to(DEVICE) if aug else None, to(dy)


def one_op(projected, gate_bias, aug_balance, dy, heads, keep_states):
    y, o, stats, states = mixer_op.mixer_forward_triton(
        projected, gate_bias, aug_balance, heads, NORMALIZER, EPS, True, keep_states
    )
    d_y = dy.unflatten(-1, (heads, -1)).transpose(0, 1)  # (B, T, H, V) view of the (T, B, W) gradient
    grads = mixer_op.mixer_backward_triton(d_y, projected, o, stats, states, gate_bias, aug_balance, heads, NORMALIZER)
    return y.flatten(-2).transpose(0, 1), grads


def two_ops(projected, gate_bias, aug_balance, dy, heads):
    """The separate ops' Triton functions, their gradients summed into the projection's as autograd did."""
    from neox_metala.ops.metala_core_triton import metala_core_bwd, metala_core_fwd

    q, x, v, g = mixer_op._parts(projected, heads)
    scale = q.shape[-1] ** -0.5
    o, _ = metala_core_fwd(q, x, v, scale, NORMALIZER)
    y, stats = epilogue_op.epilogue_forward_triton(o, q, x, v, g, gate_bias, aug_balance, NORMALIZER, EPS, True)
    d_y = dy.unflatten(-1, (heads, -1)).transpose(0, 1)
    d_o, dq, dx, dv, dg, d_bias, d_aug = epilogue_op.epilogue_backward_triton(
        d_y, o, q, x, v, g, gate_bias, aug_balance, stats, NORMALIZER
    )
    core = metala_core_bwd(q, x, v, scale, NORMALIZER, d_o)
    if aug_balance is not None:
        core = [c.float() + e.float() for c, e in zip(core, (dq, dx, dv))]
    parts = [t.to(projected.dtype).flatten(-2) for t in (*core, dg)]
    return y.flatten(-2).transpose(0, 1), (torch.cat(parts, -1), d_bias, d_aug)


def reference(projected, gate_bias, aug_balance, dy, heads):
    leaves = [t.detach().double().requires_grad_() for t in (projected, gate_bias, aug_balance) if t is not None]
    exact = leaves + [None] * (3 - len(leaves))
    y = reference_mix(*exact, heads, seq_first=True)
    return y.detach(), torch.autograd.grad(y, leaves, dy.double())


def errors_of(y, grads, expected, aug):
    d_projected, d_bias, d_aug = grads
    return mix_errors(y, (d_projected, d_bias, *([d_aug] if aug else [])), *expected, heads=HEADS)


HEADS = 2


GPU_ONLY = pytest.mark.skipif(DEVICE != "cuda", reason="bf16 and the model's shape: GPU only")
BF16 = pytest.param(torch.bfloat16, id="bf16", marks=GPU_ONLY)  # the interpreter's bf16 arithmetic is not the GPU's


@pytest.mark.parametrize("dtype", [pytest.param(torch.float32, id="fp32"), BF16])
@pytest.mark.parametrize("aug", [True, False], ids=["aug", "no-aug"])
@pytest.mark.parametrize("keep_states", [True, False], ids=["kept", "recomputed"])
@pytest.mark.parametrize("batch, seq", [(2, 70), (2, 1)], ids=["T70", "T1"])
def test_one_op_equals_the_reference(dtype, aug, keep_states, batch, seq):
    if dtype == torch.bfloat16 and seq == 1 and aug:
        pytest.skip("near-singular LayerNorm at T = 1 with self-augmentation (BOUNDS)")
    inputs = draw(dtype, batch, seq, HEADS, 32, aug)
    y, grads = one_op(*inputs, HEADS, keep_states)
    assert grads[0].is_contiguous() and grads[0].dtype == dtype and y.dtype == dtype
    errors = errors_of(y, grads, reference(*inputs, HEADS), aug)
    print(f"TRITON-MIXER {dtype} B{batch} T{seq} aug={aug} kept={keep_states}:", errors)
    assert max(errors[part] for part in ASSERTED if part in errors) <= BOUNDS[dtype], errors


AUG_PATHS = pytest.mark.parametrize(
    "core_aug, core_a", [(True, True), (True, False), (False, False)], ids=["all-in-core", "aug-in-core", "epilogue"]
)


@AUG_PATHS
def test_strong_decay_chunks_equal_the_reference(core_aug, core_a, monkeypatch):
    """A first chunk of strong decay in one sequence (the core's sub-chunk form, its own launch: the self-augmentation's
    terms formed there too with CORE_AUG and CORE_A), weak decay elsewhere, fp32 against fp64."""
    monkeypatch.setattr(mixer_op, "CORE_AUG", core_aug)
    monkeypatch.setattr(mixer_op, "CORE_A", core_a)
    projected, gate_bias, aug_balance, dy = draw(torch.float32, 2, 70, HEADS, 32, aug=True)
    width = HEADS * 32
    projected[0, :64, width // 2 : width] = -20.0  # log α = −1.25 per token: e^G_last = e^−80, below e^−60
    y, grads = one_op(projected, gate_bias, aug_balance, dy, HEADS, keep_states=False)
    errors = errors_of(y, grads, reference(projected, gate_bias, aug_balance, dy, HEADS), aug=True)
    assert max(errors[part] for part in ASSERTED) <= BOUNDS[torch.float32], errors


@AUG_PATHS
@pytest.mark.parametrize("aug", [True, False], ids=["aug", "no-aug"])
def test_one_op_equals_the_two_ops(aug, core_aug, core_a, monkeypatch):
    """The same kernels, only the gradients' sum moved into the kernels (and with CORE_AUG the self-augmentation's
    a, dq and d logits terms formed by the core's kernels): equal to the two ops' path within fp32 rounding of the
    sums, norm-relative. On a GPU the core's plain and accumulating builds are tuned apart, so their sums may run in
    other orders: elementwise 1e-6 failed there on the projection's gradient (session 24), and in session 27 one of
    two fresh processes gave 2.9e-6 (d projection) and 4.9e-6 (d aug_balance) norm-relative between the paths, each
    path 1.0-1.3e-5 from fp64 (the other process: 2.2e-7); a lost or doubled term is ≥1e-3."""
    monkeypatch.setattr(mixer_op, "CORE_AUG", core_aug)
    monkeypatch.setattr(mixer_op, "CORE_A", core_a)
    inputs = draw(torch.float32, 2, 70, HEADS, 32, aug)
    y, grads = one_op(*inputs, HEADS, keep_states=False)
    y2, grads2 = two_ops(*inputs, HEADS)
    assert (y - y2).norm() <= 1e-6 * y2.norm()  # with CORE_A a is summed by another kernel, in another order
    for mine, theirs in zip(grads, grads2):
        assert mine.shape == theirs.shape
        assert (mine - theirs).norm() <= 1e-5 * theirs.norm(), (mine - theirs).abs().max()


@pytest.mark.parametrize("k_split", [2, 4])
def test_qk_gradients_over_channel_blocks_equal_the_reference(k_split, monkeypatch):
    """The qk-gradient kernel's K_SPLIT (metala_core_triton.QK_K_SPLIT) with the self-augmentation's terms formed in
    it (CORE_AUG: each program's channels of aug_balance), K = 32, fp32 against fp64."""
    triton_runs.force_config(monkeypatch, "chunk_qk_grads", {"BV": 16, "K_SPLIT": k_split}, warps=8, stages=2)
    inputs = draw(torch.float32, 2, 70, HEADS, 64, aug=True)
    y, grads = one_op(*inputs, HEADS, keep_states=True)
    errors = errors_of(y, grads, reference(*inputs, HEADS), aug=True)
    assert max(errors[part] for part in ASSERTED) <= BOUNDS[torch.float32], errors


@pytest.mark.parametrize(
    "dtype, head_v_dim",
    [
        pytest.param(torch.float32, 32, id="fp32"),
        pytest.param(torch.float32, 128, id="V128-fp32", marks=GPU_ONLY),
        pytest.param(torch.bfloat16, 128, id="V128-bf16", marks=GPU_ONLY),
    ],
)
def test_chained_forward_over_pairs_of_v_blocks_equals_the_reference(dtype, head_v_dim, monkeypatch):
    """The chained forward with two V blocks per program (triton_runs.CHAINED_PAIRS), writing the self-augmentation's
    a (CORE_A), its states kept for the backward: against fp64, as the shipped forward is. In bf16 at V 128 this draw
    is ill-conditioned for every V blocking (H200, session 41: d q 3.23e-2 from fp64 with pairs, blocks of 64 and of
    128 alike, above BOUNDS; other seeds 4e-3 to 1e-2), so there the pairs may be no further from fp64 than the single
    block of 128 on the same inputs."""
    from neox_metala.ops import metala_core_triton

    monkeypatch.setattr(metala_core_triton, "CHAINED_FORWARD", "1")
    inputs = draw(dtype, 2, 70, HEADS, head_v_dim, aug=True)
    expected = reference(*inputs, HEADS)

    def errors_with(*config):
        with monkeypatch.context() as patch:
            triton_runs.force_config(patch, "chained", *config)
            return errors_of(*one_op(*inputs, HEADS, keep_states=True), expected, aug=True)

    errors = errors_with(*triton_runs.CHAINED_PAIRS)
    if dtype == torch.float32:
        assert max(errors[part] for part in ASSERTED) <= BOUNDS[dtype], errors
    else:
        single = errors_with({"BV": 128}, 4, 1)
        assert all(errors[part] <= 1.01 * single[part] + 1e-4 for part in ASSERTED), (errors, single)


def test_backward_in_batch_slices_changes_nothing(monkeypatch):
    """The core's backward in batch slices (STORED_ROWS_BYTES), each taking its rows of the epilogue's da with
    CORE_AUG: bit-equal to the whole batch at once."""
    from neox_metala.ops import metala_core_triton

    inputs = draw(torch.float32, 3, 70, HEADS, 32, aug=True)
    whole = one_op(*inputs, HEADS, keep_states=True)[1]
    monkeypatch.setattr(metala_core_triton, "STORED_ROWS_BYTES", 1)  # one sequence per slice
    sliced = one_op(*inputs, HEADS, keep_states=True)[1]
    for mine, theirs in zip(sliced, whole):
        assert torch.equal(mine, theirs)


@pytest.mark.skipif(DEVICE == "cuda", reason="on a GPU the tests above autotune for real")
def test_autotuning_every_configuration_keeps_the_sums_exact(monkeypatch):
    """The core's gradient kernels add into the projection's gradient, and the autotuner times each configuration
    on the real buffers: it must restore them (restore_value), else each timed run adds once more. In the
    interpreter (which cannot time): every configuration run twice through the autotuner's own timing path."""
    with triton_runs.every_config_timed_twice(monkeypatch) as timed:
        inputs = draw(torch.float32, 1, 70, HEADS, 32, aug=True)
        y, grads = one_op(*inputs, HEADS, keep_states=False)
        errors = errors_of(y, grads, reference(*inputs, HEADS), aug=True)
        assert max(errors[part] for part in ASSERTED) <= BOUNDS[torch.float32], errors
        assert timed  # the autotuner did time configurations


@GPU_ONLY
def test_model_shape_bf16_equals_the_two_ops():
    """bf16 at the 380M model's mixer shape (B8 T2048 H8 V128): the one op and the two ops' path differ only where
    the core's dq and dv were rounded to bf16 before the sum (and where a, summed in another order, moved a rounding
    of y): within two bf16 units, norm-relative."""
    heads = 8
    inputs = draw(torch.bfloat16, 8, 2048, heads, 128, True)
    y, grads = one_op(*inputs, heads, keep_states=True)
    y2, grads2 = two_ops(*inputs, heads)
    assert (y.double() - y2.double()).norm() <= 2**-7 * y2.double().norm()
    for name, mine, theirs in zip(("projected", "gate_bias", "aug_balance"), grads, grads2):
        error = ((mine.double() - theirs.double()).norm() / theirs.double().norm()).item()
        print(f"GPU-ERR one-op-vs-two-ops {name} {error:.2e}")
        assert error <= 2**-7, (name, error)

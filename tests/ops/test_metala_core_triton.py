"""MetaLA's core Triton kernels (ops/metala_core_triton.py) against the fp64 recurrence: the output and every
gradient (dq, dv, d gate logits through logsigmoid and the key's path), at awkward sizes, for draws whose chunks
take the factorised form, the exact (sub-chunk) form, or both (metala_core_draws.py), gate logits of ±30, and
inputs read in place as views of one projection.

Runs natively on a CUDA GPU (bf16 and fp32, larger shapes), or on the CPU through the Triton interpreter when
TRITON_INTERPRET=1 is set before the run (fp32 and small shapes only: the interpreter's bf16 arithmetic is not
the GPU's). Skips without triton, and on a CPU without the interpreter (the project's CPU suite).
"""

import metala_core_draws
import pytest
import torch
import triton_runs

from neox_metala.ops import metala_core_configs, metala_core_inputs, reference
from neox_metala.ops.chunked import chunked_gla

pytestmark = triton_runs.MARKS
DEVICE = triton_runs.DEVICE
F64 = torch.float64
SCALE = 0.3
NORMALIZER = 16.0  # MetaLA's (ops/options.py: decay_normalizer)
# (relative bound, bound relative to ‖q ⊙ dq‖ for d log_decay, carried to d gate logits): d log_decay is a
# difference of terms of that size which cancel under strong decay, so its floor is the dtype's rounding of those
# terms (as in fla's dg)
BOUNDS = {torch.float32: (1e-5, 1e-6), torch.bfloat16: (1e-2, 3e-3), torch.float16: (3e-3, 1e-3)}


def draw(batch, seq, heads, head_k_dim, head_v_dim, decay, seed=0):
    """fp64 q, gate logits, v (metala_core_draws.draw_logits) and a cotangent, on the test's device."""
    q, logits, v = metala_core_draws.draw_logits(batch, seq, heads, head_k_dim, head_v_dim, decay, seed)
    cotangent = torch.randn(v.shape, dtype=F64, generator=torch.Generator().manual_seed(seed + 1))
    return [t.to(DEVICE) for t in (q, logits, v, cotangent)]


def exact(q, logits, v, cotangent, normalizer=NORMALIZER):
    """fp64 output and gradients (d gate logits through logsigmoid): the step-by-step recurrence, or for long draws
    the pairwise chunked form."""
    inputs = [t.detach().requires_grad_() for t in (q, logits, v)]
    log_decay, key = reference.decay_and_key_reference(inputs[1], normalizer)
    if q.shape[1] <= 512:
        output, _ = reference.recurrent_gla_reference(inputs[0], key, inputs[2], log_decay, SCALE)
    else:
        output, _ = chunked_gla(inputs[0], key, inputs[2], log_decay, SCALE, chunk_size=64)
    return output, torch.autograd.grad(output, inputs, cotangent)


def projection_views(q, logits, v):
    """q, logits, v as the layer hands them over: head-split views of one (B, T, 3W)-like projection [q | logits |
    v | gate], tokens 3W apart, not copies."""
    (batch, seq, heads, head_k_dim), head_v_dim = q.shape, v.shape[-1]
    widths = [heads * head_k_dim, heads * head_k_dim, heads * head_v_dim, heads * head_v_dim]
    projected = q.new_full((batch, seq, sum(widths)), float("nan"))  # the gate part must not be read
    parts = projected.split(widths, dim=-1)
    for part, x in zip(parts, (q, logits, v)):
        part.copy_(x.flatten(-2))
    return [part.unflatten(-1, (heads, -1)) for part in parts[:3]]


def check(dtype, batch, seq, heads, head_k_dim, head_v_dim, decay, views=False, normalizer=NORMALIZER):
    from neox_metala.ops import metala_core_triton

    q, logits, v, cotangent = draw(batch, seq, heads, head_k_dim, head_v_dim, decay)
    q, logits, v = (t.to(dtype).double() for t in (q, logits, v))  # the reference sees the kernel's rounded inputs
    expected, expected_grads = exact(q, logits, v, cotangent, normalizer)
    inputs = [q.to(dtype), logits.to(dtype), v.to(dtype)]
    if views:
        inputs = projection_views(*inputs)
        for x in inputs:  # read in place
            assert not x.is_contiguous() and metala_core_inputs.token_rows(x)[0].data_ptr() == x.data_ptr()
    output, states = metala_core_triton.metala_core_fwd(*inputs, SCALE, normalizer, keep_states=True)
    grads = metala_core_triton.metala_core_bwd(*inputs, SCALE, normalizer, cotangent.to(dtype))
    # with the forward's states (metala_core_triton.CHAINED_FORWARD forms them otherwise than the recomputation)
    with_states = metala_core_triton.metala_core_bwd(*inputs, SCALE, normalizer, cotangent.to(dtype), states=states)
    assert grads[1].dtype == torch.float32 and all(g.is_contiguous() for g in (output, *grads))
    relative, floor = BOUNDS[dtype]
    errors = {"output": (output.double() - expected).norm() / expected.norm()}
    # d logits = d log_decay · sigmoid(−x) / normalizer: d log_decay's floor carried through the same factor
    logits_floor = floor * (q * expected_grads[0] * torch.sigmoid(-logits) / normalizer).norm()
    floors = {"q": 0.0, "gate_logits": logits_floor, "v": 0.0}
    for states_from, got_grads in (("", grads), ("kept ", with_states)):
        for name, got, want in zip(("q", "gate_logits", "v"), got_grads, expected_grads):
            assert torch.isfinite(got).all(), states_from + name
            error = (got.double() - want).norm() / (relative * want.norm() + floors[name]) * relative
            errors[states_from + name] = error
    print(
        f"TRITON-CORE {dtype} B{batch} T{seq} H{heads} K{head_k_dim} V{head_v_dim} {decay} views={views}:",
        " ".join(f"{name} {error:.2e}" for name, error in errors.items()),
    )
    assert all(error <= relative for error in errors.values()), errors


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
    # gate logits of ±30: logsigmoid's accuracy at large logits (the keys ≈ 1e-14 that make the whole output)
    pytest.param(70, 16, 32, "open", id="T70-open"),
    pytest.param(70, 16, 32, "open-shut", id="T70-open-shut"),
]


GPU_ONLY = pytest.mark.skipif(DEVICE != "cuda", reason="larger shapes and bf16: GPU only")


# (metala_core_triton.STORED_DECAY_ROWS, CHAINED_BACKWARD)
BACKWARD_FORMS = {"formed-decays": (False, "0"), "stored-decays": (True, "auto")}


def use_backward_form(monkeypatch, name):
    from neox_metala.ops import metala_core_triton

    stored, chained = BACKWARD_FORMS[name]
    monkeypatch.setattr(metala_core_triton, "STORED_DECAY_ROWS", stored)
    monkeypatch.setattr(metala_core_triton, "CHAINED_BACKWARD", chained)


@pytest.fixture(params=list(BACKWARD_FORMS))
def backward_form(request, monkeypatch):
    """The backward as shipped (the qk gradients' decay terms read as decay_rows_kernel stored them, the state
    gradients and dv by the form metala_core_triton._chained_backward picks: the chained launch in the interpreter
    and at these tests' sizes), or with those terms formed again and the state gradients and dv by the three
    launches (metala_core_triton.STORED_DECAY_ROWS and CHAINED_BACKWARD)."""
    use_backward_form(monkeypatch, request.param)


@pytest.mark.parametrize("seq, head_k_dim, head_v_dim, decay", SMALL)
def test_kernels_fp32_equal_the_recurrence(seq, head_k_dim, head_v_dim, decay, backward_form):
    check(torch.float32, 1, seq, 2, head_k_dim, head_v_dim, decay)


@pytest.mark.parametrize("normalizer", [12.0, 2.0, 256.0], ids=["not-a-power-of-2", "2", "256"])
@pytest.mark.parametrize("decay", ["mixed", "open-shut"])
def test_other_normalizers_equal_the_recurrence(normalizer, decay):
    """d gate logits' factor sigmoid(−x) = 1 − α^normalizer (metala_core_grad_kernels._sigmoid_neg) by −expm1 where
    the normalizer is not a power of 2, else by the key's product over its doublings (one factor at 2, eight at 256;
    the other tests' 16 takes four), at logits of either sign and of ±30 (open-shut)."""
    check(torch.float32, 1, 130, 2, 16, 32, decay, normalizer=normalizer)


@pytest.mark.parametrize("seq, head_k_dim, head_v_dim, decay", SMALL)
def test_dv_forming_its_decays_beside_the_stored_rows_equals_the_recurrence(
    seq, head_k_dim, head_v_dim, decay, monkeypatch
):
    """metala_core_triton.DV_READS_ROWS off: dv forms its decay terms from the gate logits while the qk gradients
    read the rows of G."""
    from neox_metala.ops import metala_core_triton

    use_backward_form(monkeypatch, "stored-decays")
    monkeypatch.setattr(metala_core_triton, "DV_READS_ROWS", False)
    check(torch.float32, 1, seq, 2, head_k_dim, head_v_dim, decay)


@pytest.mark.parametrize(
    "seq, head_k_dim, head_v_dim, decay",
    [p for p in SMALL if p.id in ("T130-mild", "T130-K20-V24-mild", "T130-mixed", "T63-graded", "T70-open")],
)
def test_three_launch_backward_reading_the_stored_rows_equals_the_recurrence(
    seq, head_k_dim, head_v_dim, decay, monkeypatch
):
    """The backward's form where a GPU has few long chains (the 380M model's 2 x 8192 tokens of 8 heads): the state
    gradients and dv by the three launches, the decay terms read from the stored rows (metala_core_triton's
    CHAINED_BACKWARD "0", STORED_DECAY_ROWS)."""
    from neox_metala.ops import metala_core_triton

    monkeypatch.setattr(metala_core_triton, "STORED_DECAY_ROWS", True)
    monkeypatch.setattr(metala_core_triton, "CHAINED_BACKWARD", "0")
    check(torch.float32, 1, seq, 2, head_k_dim, head_v_dim, decay)


FP32, BF16 = torch.float32, torch.bfloat16


# (BV, K_SPLIT, warps, stages) of the qk gradients: small blocks, so that the interpreter runs the V loop twice
SPLIT_2, SPLIT_4 = (16, 2, 8, 2), (16, 4, 8, 2)


@pytest.mark.parametrize(
    "dtype, seq, head_k_dim, head_v_dim, decay, block",
    [
        pytest.param(FP32, 130, 20, 24, "mild", SPLIT_2, id="T130-K20-V24-mild-split2"),  # the second program: K 16-19
        pytest.param(FP32, 70, 64, 32, "mixed", SPLIT_2, id="T70-K64-mixed-split2"),
        pytest.param(FP32, 70, 64, 32, "mixed", SPLIT_4, id="T70-K64-mixed-split4"),
        pytest.param(FP32, 100, 20, 24, "moderate", SPLIT_2, id="T100-K20-V24-moderate-split2"),
        pytest.param(FP32, 130, 32, 24, "graded", SPLIT_4, id="T130-K32-V24-graded-split4"),  # past K: no stores
        pytest.param(BF16, 300, 64, 128, "mixed", SPLIT_2, id="T300-model-widths-mixed-bf16-split2", marks=GPU_ONLY),
        pytest.param(BF16, 2048, 64, 128, "mild", SPLIT_4, id="T2048-model-widths-mild-bf16-split4", marks=GPU_ONLY),
        # the configurations metala_core_triton.QK_K_SPLIT offers (4 warps: their builds at BV 128 gave wrong dq, the
        # unsplit kernel's an illegal address below one chunk): below a chunk, strong chunks, both forms, T 2048
        *[
            pytest.param(
                *(BF16, seq, 64, 128, decay, block),
                id=f"T{seq}-{decay}-offered-{'-'.join(map(str, block))}",
                marks=GPU_ONLY,
            )
            for block in metala_core_configs.QK_K_SPLIT_BLOCKS
            for seq, decay in ((1, "mild"), (40, "strong"), (300, "mixed"), (2048, "mild"))
        ],
        # other widths that qk_split_prune offers them at: a masked second V step (V 96), three steps (V 192)
        *[
            pytest.param(
                *(BF16, 130, head_k_dim, head_v_dim, "mixed", block),
                id=f"T130-K{head_k_dim}-V{head_v_dim}-offered-{'-'.join(map(str, block))}",
                marks=GPU_ONLY,
            )
            for block in metala_core_configs.QK_K_SPLIT_BLOCKS
            for head_k_dim, head_v_dim in ((48, 96), (64, 192))
        ],
    ],
)
def test_qk_gradients_over_channel_blocks_equal_the_recurrence(
    dtype, seq, head_k_dim, head_v_dim, decay, block, monkeypatch
):
    """The qk-gradient kernel's K_SPLIT (metala_core_triton.QK_K_SPLIT): each chunk's channels over K_SPLIT programs
    (at least 16 channels each), in both forms' launches; at the model's widths the inputs are views of one
    projection, as the layer's, also in the configurations the autotuner is offered. In fp32 also the build that adds
    into given gradients: each program's channels of them."""
    from neox_metala.ops import metala_core_triton

    use_backward_form(monkeypatch, "stored-decays")
    block_v, split, warps, stages = block
    triton_runs.force_config(monkeypatch, "chunk_qk_grads", {"BV": block_v, "K_SPLIT": split}, warps, stages)
    if dtype == BF16:
        check(dtype, 2, seq, 3, head_k_dim, head_v_dim, decay, views=True)
        return
    check(dtype, 1, seq, 2, head_k_dim, head_v_dim, decay)
    q, logits, v, cotangent = (t.float() for t in draw(1, seq, 2, head_k_dim, head_v_dim, decay))
    plain = metala_core_triton.metala_core_bwd(q, logits, v, SCALE, NORMALIZER, cotangent)
    priors = [torch.randn(t.shape, generator=torch.Generator().manual_seed(5)).to(DEVICE) for t in plain]
    given = [prior.clone() for prior in priors]
    metala_core_triton.metala_core_bwd(q, logits, v, SCALE, NORMALIZER, cotangent, grads=given, accumulate=True)
    for got, prior, want in zip(given, priors, plain):
        # within fp32 rounding, not bitwise: the build may fuse its last product with the prior's addition (one FMA,
        # one rounding: session 37's qk gradients), and the chained backward takes dv's prior as its first product's
        # accumulator, so that its sums round at the prior's magnitude (~4 here: dv 3.3e-6 off on an H200, session
        # 43); a prior missed, added twice or at another channel is off by O(1)
        torch.testing.assert_close(got, prior + want, rtol=1e-6, atol=1e-5)


def test_log1p_within_its_bound():
    """The kernels' log1p (logsigmoid's, wherever they form the log decay) within 2.5e-7 relative of fp64's on
    [0, 1], on 2,001 points spaced by ratio from 2^-30 to 2^-6 and 200,001 evenly from 2^-20 to 1. The polynomial one
    degree lower (3.3e-7 in the interpreter) fails it."""
    import elementwise_probe

    y = torch.cat([torch.logspace(-30, -6, 2001, base=2.0), torch.linspace(2.0**-20, 1.0, 200_001)])
    y = y.to(FP32).to(DEVICE)
    want = torch.log1p(y.double())
    error = ((elementwise_probe.log1p(y).double() - want).abs() / want).max().item()
    print(f"log1p: {error:.2e} relative")
    assert error <= 2.5e-7


@pytest.mark.parametrize("seq, head_k_dim, decay", [(130, 20, "mild"), (70, 64, "mixed"), (100, 32, "graded")])
def test_qk_suffix_sums_as_tf32_products_equal_the_recurrence(seq, head_k_dim, decay, monkeypatch):
    """The qk gradients' in-chunk suffix sums of dG as two tf32 products (metala_core_grad_kernels._suffix_sums: the
    split builds whose dots are tf32, those of bf16 and fp16 inputs), here on fp32 inputs with every dot taken in
    tf32: in the interpreter, whose dots are exact, within fp32's bounds (splitting each term into its leading bits
    and the rest loses nothing there); on the GPU within fp16's (tf32 dots on fp32 operands, as fp16 inputs get)."""
    use_backward_form(monkeypatch, "stored-decays")
    monkeypatch.setattr(metala_core_inputs, "precision", lambda dtype: "tf32")
    if DEVICE == "cuda":
        monkeypatch.setitem(BOUNDS, FP32, BOUNDS[torch.float16])
    block_v, split, warps, stages = SPLIT_2
    triton_runs.force_config(monkeypatch, "chunk_qk_grads", {"BV": block_v, "K_SPLIT": split}, warps, stages)
    check(FP32, 1, seq, 2, head_k_dim, 24, decay)


@GPU_ONLY
@pytest.mark.parametrize("head_v_dim", [32, 64, 96, 128], ids=lambda v: f"V{v}")
@pytest.mark.parametrize(
    "seq, head_k_dim, decay, views",
    [(1, 16, "mild", False), (130, 16, "mild", False), (70, 64, "mixed", True)],
    ids=["T1-K16", "T130-K16", "T70-K64-views"],
)
def test_qk_k_split_autotuned_in_bf16_equals_the_recurrence(seq, head_k_dim, head_v_dim, decay, views, monkeypatch):
    """metala_core_triton.QK_K_SPLIT on (the default; set here so that the test holds if it is turned off): the qk
    gradients autotuned over the split configurations as well, as the model runs them, three times per shape. In
    session 31 the 4-warp split offered at V <= BV faulted here (an illegal address, at random among these shapes);
    metala_core_configs.qk_split_prune leaves it out there (session 32: every shape passed, twice; session 33: its
    bf16 build is wrong, not faulting, at one V step, forced). V 96: two steps, the second one masked."""
    from neox_metala.ops import metala_core_configs, metala_core_triton

    monkeypatch.setattr(metala_core_triton, "QK_K_SPLIT", True)
    metala_core_configs.kernels.cache_clear()
    try:
        for _ in range(3):
            check(BF16, 2, seq, 3, head_k_dim, head_v_dim, decay, views=views)
            torch.cuda.synchronize()
    finally:
        metala_core_configs.kernels.cache_clear()  # the switch's own value again


def exact_states(q, logits, v, cotangent, chunk_size=64):
    """fp64 (B, H, N, K, V) states entering each chunk, h_n = Σ_t<s k_t e^(L_s−1 − L_t) v_t with L the inclusive
    cumsum of log α and s = n·chunk_size, and the state gradients of Σ output · cotangent, slot n that of h_n+1:
    SCALE Σ_t≥e (q_t ⊙ e^(L_t − L_e−1)) cotangent_t with e = (n + 1)·chunk_size."""
    log_decay, key = reference.decay_and_key_reference(logits, NORMALIZER)
    cum = log_decay.cumsum(1)
    (batch, seq, heads, head_k_dim), head_v_dim = q.shape, v.shape[-1]
    chunks = -(-seq // chunk_size)
    states, grads = (q.new_zeros(batch, heads, chunks, head_k_dim, head_v_dim) for _ in range(2))
    for n in range(chunks):
        start, end = n * chunk_size, (n + 1) * chunk_size
        if n > 0:
            weights = key[:, :start] * torch.exp(cum[:, start - 1 : start] - cum[:, :start])
            states[:, :, n] = torch.einsum("bthk,bthv->bhkv", weights, v[:, :start])
        if end < seq:
            weights = q[:, end:] * torch.exp(cum[:, end:] - cum[:, end - 1 : end])
            grads[:, :, n] = SCALE * torch.einsum("bthk,bthv->bhkv", weights, cotangent[:, end:])
    return states, grads


@pytest.mark.parametrize(
    "dtype, seq, head_k_dim, head_v_dim, decay",
    [
        pytest.param(FP32, 130, 16, 32, "mild", id="T130-mild"),
        pytest.param(FP32, 1, 16, 32, "mild", id="T1-mild"),
        pytest.param(FP32, 130, 20, 24, "graded", id="T130-K20-V24-graded"),  # the pair's second block cut by V
        pytest.param(FP32, 70, 16, 96, "mixed", id="T70-V96-mixed"),  # several pairs (chains) per head
        pytest.param(FP32, 130, 16, 32, "strong", id="T130-strong"),
        pytest.param(FP32, 70, 16, 32, "open", id="T70-open"),
        pytest.param(BF16, 300, 64, 128, "mixed", id="T300-K64-V128-mixed-bf16", marks=GPU_ONLY),
        pytest.param(FP32, 300, 64, 128, "mixed", id="T300-K64-V128-mixed-fp32", marks=GPU_ONLY),
        pytest.param(BF16, 2048, 64, 128, "mild", id="T2048-K64-V128-mild-bf16", marks=GPU_ONLY),
    ],
)  # fmt: skip
def test_chained_forward_over_pairs_of_v_blocks_equals_the_recurrence(
    dtype, seq, head_k_dim, head_v_dim, decay, monkeypatch
):
    """The chained forward with two V blocks per program (metala_core_chained_kernels' V_STEPS 2: a chain per pair,
    the key-side terms formed once, the second block's state published after the first block's output): its output,
    and the gradients from its states as kept, against the fp64 recurrence."""
    from neox_metala.ops import metala_core_triton

    monkeypatch.setattr(metala_core_triton, "CHAINED_FORWARD", "1")
    triton_runs.force_config(monkeypatch, "chained", *triton_runs.CHAINED_PAIRS)
    check(dtype, 2, seq, 2, head_k_dim, head_v_dim, decay)


@pytest.mark.parametrize("group_bh", [1, 3], ids=["groups-of-1", "groups-of-3"])
def test_chained_launches_in_groups_of_chains_equal_the_recurrence(group_bh, monkeypatch):
    """Both chained launches with their chains in groups (metala_core_chains.CARRIED_BYTES, CARRIED_GRAD_BYTES: of
    one batch·head, or of three of the four, the last group then smaller) and three chains per head (V 96 in pairs of
    V blocks of 16): output and gradients against fp64. A program numbered before the chunk before it on its chain
    would wait for ever (the interpreter runs the programs one after another); a chunk left out or taken twice would
    be wrong."""
    from neox_metala.ops import metala_core_chains, metala_core_triton

    monkeypatch.setattr(metala_core_triton, "CHAINED_FORWARD", "1")
    monkeypatch.setattr(metala_core_triton, "CHAINED_BACKWARD", "1")
    for name in ("CARRIED_BYTES", "CARRIED_GRAD_BYTES"):
        monkeypatch.setattr(metala_core_chains, name, group_bh * 2 * 16 * 96 * 4)
    triton_runs.force_config(monkeypatch, "chained", *triton_runs.CHAINED_PAIRS)
    triton_runs.force_config(monkeypatch, "chained_grads", {"BV": 32})
    check(FP32, 2, 70, 2, 16, 96, "mixed")


@pytest.mark.parametrize("decay", ["slow", "mild"])
def test_states_and_their_gradients_equal_the_recurrence(decay, monkeypatch):
    """Each chunk's entering state (the scan's, and the chained forward's as kept) and its gradient (the reverse
    scan's, and the chained backward's of metala_core_triton.CHAINED_BACKWARD; every slot,
    T = 300: five chunks, the last one partial) against fp64. "slow": gate logits around +4 (log α ≈ −1e-3 per token,
    e^G_last ≈ 0.93), where the state carried from chunk to chunk is most of each slot: a relative error of 1e-4 in
    the decay either scan applies fails it. Stronger decays are left to the tests above: on the GPU their slots differ
    from fp64 by 1e-4 to 5e-4 relative (H200, session 29: "mixed", "graded", "strong"; fp32's rounding of large G,
    differenced), which the outputs and gradients do not see."""
    from neox_metala.ops import metala_core_triton

    q, logits, v, cotangent = draw(2, 300, 2, 20, 24, "mild")
    logits = logits / 3 + 4 if decay == "slow" else logits
    q, logits, v, cotangent = (t.float() for t in (q, logits, v, cotangent))
    want = exact_states(*(t.double() for t in (q, logits, v, cotangent)))
    state_grads = {}
    for chained in "01":
        monkeypatch.setattr(metala_core_triton, "CHAINED_BACKWARD", chained)
        state_grads[chained] = metala_core_triton.chunk_state_grads(q, logits, cotangent, SCALE, NORMALIZER)
    got = (
        metala_core_triton.chunk_states(q, logits, v, NORMALIZER),
        state_grads["0"],
        metala_core_triton.metala_core_fwd(q, logits, v, SCALE, NORMALIZER, keep_states=True)[1],  # CHAINED_FORWARD's
        state_grads["1"],
    )
    names = ("states", "state gradients", "kept states", "chained state gradients")
    for name, got_slots, want_slots in zip(names, got, (*want, *want)):
        # per slot, relative to that slot's size (at least a thousandth of the largest slot's)
        sizes = want_slots.flatten(3).norm(dim=-1)
        errors = (got_slots.double() - want_slots).flatten(3).norm(dim=-1) / sizes.clamp(min=1e-3 * sizes.max())
        assert errors.max() <= 1e-5, (name, errors)


@pytest.mark.parametrize("decay", ["mixed", "graded"])
def test_strong_decay_launches_of_several_programs(monkeypatch, decay):
    """The launches for chunks of strong decay test STRONG_CHUNKS chunks per program: at 2, T = 300 (5 chunks) takes
    three programs per head, the last one past the sequence's end, with chunks of both forms among them."""
    from neox_metala.ops import metala_core_triton

    monkeypatch.setattr(metala_core_triton, "STRONG_CHUNKS", 2)
    check(torch.float32, 1, 300, 2, 16, 32, decay)
    # adding into given gradients (the one-op mixer's ACCUMULATE builds): every chunk added exactly once, by one launch
    q, logits, v, cotangent = (t.float() for t in draw(1, 300, 2, 16, 32, decay))
    plain = metala_core_triton.metala_core_bwd(q, logits, v, SCALE, NORMALIZER, cotangent)
    priors = [torch.full_like(t, 0.5) for t in plain]
    added = metala_core_triton.metala_core_bwd(
        q, logits, v, SCALE, NORMALIZER, cotangent, grads=[t.clone() for t in priors], accumulate=True
    )
    for got, want, prior in zip(added, plain, priors):
        torch.testing.assert_close(got, want + prior, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "batch, seq, decay", [(2, 130, "mixed"), (2, 70, "open-shut")], ids=["B2-T130-mixed", "B2-T70-open-shut"]
)
def test_kernels_read_views_of_one_projection(batch, seq, decay, backward_form):
    """q, gate logits and v as head-split views of one (B, T, 3W) projection: read in place, same results."""
    check(torch.float32, batch, seq, 2, 16, 32, decay, views=True)


@pytest.mark.parametrize(
    "whole_batch, chained", [("0", "auto"), ("1", "auto"), ("1", "0")],
    ids=["sliced", "whole-batch-chained", "whole-batch-scan"],
)  # fmt: skip
@pytest.mark.parametrize("kept", [True, False], ids=["kept-states", "recomputed"])
def test_backward_in_batch_slices_changes_nothing(kept, whole_batch, chained, monkeypatch):
    """A backward run in batch slices (STORED_ROWS_BYTES below one sequence's rows: one slice per sequence, the
    states and the gradients' views sliced with it) writes what the one-slice backward writes, bit for bit: into
    views of one projection's gradient, added to what they held, and into tensors of its own; also with the state
    gradients formed over the whole batch before the slices (WHOLE_BATCH_STATE_GRADS), by either form."""
    from neox_metala.ops import metala_core_triton

    use_backward_form(monkeypatch, "stored-decays")  # the slices bound the stored rows
    monkeypatch.setattr(metala_core_triton, "CHAINED_BACKWARD", chained)
    # sequences of other decays, so that a slice reading another's chunk decays takes other forms
    q, logits, v, cotangent = map(torch.cat, zip(*(draw(1, 70, 2, 16, 32, d) for d in ("mixed", "strong", "mild"))))
    inputs = projection_views(q.float(), logits.float(), v.float())
    _, states = metala_core_triton.metala_core_fwd(*inputs, SCALE, NORMALIZER, keep_states=True)
    prior = torch.randn(q.shape[:2] + (2 * 16 * 2 + 2 * 32 * 2,), generator=torch.Generator().manual_seed(5))

    def backward():
        gradient = prior.to(DEVICE).clone()
        views = [t.unflatten(-1, (2, -1)) for t in gradient.split([32, 32, 64, 64], dim=-1)[:3]]
        metala_core_triton.metala_core_bwd(
            *inputs, SCALE, NORMALIZER, cotangent.float(), states if kept else None, grads=views, accumulate=True
        )
        return gradient

    def backward_into_new_tensors():
        given_states = states if kept else None
        return metala_core_triton.metala_core_bwd(*inputs, SCALE, NORMALIZER, cotangent.float(), given_states)

    whole, whole_new = backward(), backward_into_new_tensors()
    monkeypatch.setattr(metala_core_triton, "STORED_ROWS_BYTES", 1)
    monkeypatch.setattr(metala_core_triton, "WHOLE_BATCH_STATE_GRADS", whole_batch)
    sliced, sliced_new = backward(), backward_into_new_tensors()
    assert torch.equal(sliced, whole)
    assert not torch.equal(whole, prior.to(DEVICE))
    for got, want in zip(sliced_new, whole_new):
        assert torch.equal(got, want)


@GPU_ONLY
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("seq, head_k_dim, head_v_dim, decay", SMALL)
def test_kernels_half_precision_within_bounds(seq, head_k_dim, head_v_dim, decay, dtype, backward_form):
    if dtype == torch.float16 and decay == "open":
        # keys ~6e-15 everywhere make outputs and gradients ~1e-13, below fp16's smallest subnormal (6e-8): no fp16
        # tensor can hold them (bf16 has fp32's range); "open-shut" keeps fp16's share of these channels
        pytest.skip("the draw's outputs are below fp16's range")
    check(dtype, 2, seq, 3, head_k_dim, head_v_dim, decay, views=decay == "mixed")


@GPU_ONLY
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize(
    "batch, seq, decay",
    [(2, 300, "mild"), (2, 300, "mixed"), (1, 2048, "mild"), (1, 2048, "mixed")],
    ids=["B2-T300-mild", "B2-T300-mixed", "B1-T2048-mild", "B1-T2048-mixed"],
)
def test_kernels_at_model_widths(dtype, batch, seq, decay, backward_form):
    check(dtype, batch, seq, 3, 64, 128, decay, views=True)


def test_inputs_are_checked():
    from neox_metala.ops import metala_core_triton

    q = torch.zeros(1, 4, 1, 16, device=DEVICE)
    with pytest.raises(ValueError, match="must share one of"):
        metala_core_triton.metala_core_fwd(q, q.double(), q, SCALE, NORMALIZER)
    with pytest.raises(ValueError, match="same B, T, H"):
        metala_core_triton.metala_core_fwd(q, q, q[:, :3], SCALE, NORMALIZER)


def test_inputs_in_other_layouts_are_copied_to_the_kernels_layout():
    """token_rows: a view that the kernels can read keeps its storage and row stride; others are copied."""
    projected = torch.zeros(2, 5, 3 * 24, device=DEVICE)
    view = projected[..., 24:48].unflatten(-1, (3, 8))  # (B, T, H, D) = (2, 5, 3, 8), tokens 72 apart
    same, stride = metala_core_inputs.token_rows(view)
    assert same is view and stride == 72
    for other in (view.transpose(0, 1), view.transpose(2, 3), projected[:, ::2, :24].unflatten(-1, (3, 8))):
        copied, stride = metala_core_inputs.token_rows(other)
        assert copied.is_contiguous() and stride == 24 and torch.equal(copied, other)


@GPU_ONLY
@pytest.mark.parametrize("keep_states", [False, True], ids=["recomputed", "kept"])
def test_custom_op_runs_the_kernels(keep_states):
    """ops/metala_core_op.py on CUDA tensors (views of one projection): its autograd gives the launchers' own output
    and gradients (d gate logits cast to their dtype by autograd)."""
    from neox_metala.ops import metala_core_op, metala_core_triton

    q, logits, v, cotangent = draw(2, 200, 3, 64, 128, "mixed")
    q, logits, v = projection_views(q.bfloat16(), logits.bfloat16(), v.bfloat16())
    cotangent = cotangent.bfloat16()
    leaves = [t.detach().requires_grad_() for t in (q, v, logits)]
    output = metala_core_op.metala_core(*leaves, SCALE, NORMALIZER, keep_states=keep_states)
    grads = torch.autograd.grad(output, leaves, cotangent)
    # the backward from the states the op takes: kept, the forward's (CHAINED_FORWARD forms them otherwise than the
    # recomputation), else recomputed
    expected, states = metala_core_triton.metala_core_fwd(q, logits, v, SCALE, NORMALIZER, keep_states=keep_states)
    dq, d_logits, dv = metala_core_triton.metala_core_bwd(q, logits, v, SCALE, NORMALIZER, cotangent, states)
    assert torch.equal(output, expected)
    for got, want in zip(grads, (dq, dv, d_logits.bfloat16())):
        assert torch.equal(got, want)


@pytest.mark.skipif(DEVICE == "cuda", reason="on a GPU every test above autotunes for real")
@pytest.mark.parametrize("k_split", [False, True], ids=["unsplit", "qk-k-split"])
def test_autotuning_every_configuration_keeps_the_results_exact(k_split, monkeypatch):
    """The state scan works in place on its updates, so the autotuner, which times each configuration on the real
    buffers, must restore them (restore_value), and the chained forward's flags must start from zero (reset_to_zero). In
    the interpreter (which cannot time): every configuration of every kernel, those of both forward and both backward
    forms, run twice through the autotuner's own timing path, the last one reported fastest and so kept; then the
    result must still be the recurrence's. With metala_core_triton.QK_K_SPLIT the qk gradients' last configuration
    splits the channels."""
    from neox_metala.ops import metala_core_triton

    monkeypatch.setattr(metala_core_triton, "QK_K_SPLIT", k_split)
    with triton_runs.every_config_timed_twice(monkeypatch):
        for form, chained in zip(BACKWARD_FORMS, ("0", "1")):  # both forward and both backward forms too
            use_backward_form(monkeypatch, form)
            monkeypatch.setattr(metala_core_triton, "CHAINED_FORWARD", chained)
            monkeypatch.setattr(metala_core_triton, "CHAINED_BACKWARD", chained)
            # V 80: two V steps of the splits' 64 (metala_core_configs.qk_split_prune offers none below)
            check(torch.float32, 1, 130, 2, 20, 80 if k_split else 24, "graded")
        for name, kernel in metala_core_triton._kernels().items():
            assert len(kernel.configs) > 1 and kernel.best_config == kernel.configs[-1], name
        assert ("K_SPLIT" in metala_core_triton._kernels()["chunk_qk_grads"].best_config.kwargs) == k_split


def test_autotuners_key_the_plain_and_accumulating_builds_apart(monkeypatch):
    """A configuration timed for the backward that writes its gradients is not taken for the one that adds into
    given gradients (another build, with another best configuration on an H200): each gets a pick of its own."""
    from neox_metala.ops import metala_core_triton

    q, logits, v, cotangent = (t.float() for t in draw(1, 70, 2, 16, 32, "mild"))
    with triton_runs.every_config_timed_twice(monkeypatch):
        plain = metala_core_triton.metala_core_bwd(q, logits, v, SCALE, NORMALIZER, cotangent)
        given = [torch.zeros_like(t) for t in plain]
        metala_core_triton.metala_core_bwd(q, logits, v, SCALE, NORMALIZER, cotangent, grads=given, accumulate=True)
        kernels = metala_core_triton._kernels()
        for name in ("chunk_qk_grads", "chunk_dv", "chained_grads"):
            assert len(kernels[name].cache) == 2, (name, list(kernels[name].cache))
    for got, want in zip(given, plain):
        assert torch.equal(got, want)  # added into zeros


@GPU_ONLY
def test_the_forward_takes_the_form_its_rule_picks(monkeypatch):
    """On the GPU, with NEOX_METALA_CHAINED_FORWARD at its default: two heads of 8192 tokens (128 chunks, two chains)
    by the three launches, 300 tokens (5 chunks) by the chained one; the outputs and states of either form those of
    the other, forced, to bf16 rounding."""
    from neox_metala.ops import metala_core_triton

    monkeypatch.setattr(metala_core_triton, "CHAINED_FORWARD", "auto")
    for seq, chained in ((8192, False), (300, True)):
        q, logits, v, _ = (t.bfloat16() for t in draw(1, seq, 2, 64, 128, "mild"))
        calls = triton_runs.record_launches(monkeypatch, metala_core_triton)
        out, states = metala_core_triton.metala_core_fwd(q, logits, v, SCALE, NORMALIZER, keep_states=True)
        names = [kernel.fn.__name__ for kernel, _, _ in calls]
        assert ("chained_kernel" in names) == chained and ("scan_kernel" in names) != chained, names
        monkeypatch.setattr(metala_core_triton, "CHAINED_FORWARD", "0" if chained else "1")
        other_out, other_states = metala_core_triton.metala_core_fwd(q, logits, v, SCALE, NORMALIZER, keep_states=True)
        monkeypatch.setattr(metala_core_triton, "CHAINED_FORWARD", "auto")
        assert triton_runs.relative_error(out, other_out.double()) <= 1e-2, seq
        assert triton_runs.relative_error(states, other_states.double()) <= 1e-2, seq


@GPU_ONLY
def test_the_backward_takes_the_form_its_rule_picks(monkeypatch):
    """On the GPU, with NEOX_METALA_CHAINED_BACKWARD at its default: two heads of 8192 tokens (128 chunks, two chains)
    by the three launches, 300 tokens (5 chunks) by the chained one; the gradients of either form those of the other,
    forced, to bf16 rounding."""
    from neox_metala.ops import metala_core_triton

    monkeypatch.setattr(metala_core_triton, "CHAINED_BACKWARD", "auto")
    for seq, chained in ((8192, False), (300, True)):
        q, logits, v, cotangent = (t.bfloat16() for t in draw(1, seq, 2, 64, 128, "mild"))
        calls = triton_runs.record_launches(monkeypatch, metala_core_triton)
        grads = metala_core_triton.metala_core_bwd(q, logits, v, SCALE, NORMALIZER, cotangent)
        names = [kernel.fn.__name__ for kernel, _, _ in calls]
        assert ("chained_grads_kernel" in names) == chained, names
        assert ("state_grad_updates_kernel" in names) != chained, names
        monkeypatch.setattr(metala_core_triton, "CHAINED_BACKWARD", "0" if chained else "1")
        other = metala_core_triton.metala_core_bwd(q, logits, v, SCALE, NORMALIZER, cotangent)
        monkeypatch.setattr(metala_core_triton, "CHAINED_BACKWARD", "auto")
        for name, got, want in zip(("q", "gate_logits", "v"), grads, other):
            assert triton_runs.relative_error(got, want.double()) <= 1e-2, (seq, name)


@GPU_ONLY
def test_the_state_gradients_span_the_batch_where_only_the_batch_is_chained(monkeypatch):
    """On the GPU, WHOLE_BATCH_STATE_GRADS "auto": two sequences of 8192 tokens and 2 heads in slices of one sequence,
    on a device counted as 8 SMs, so that a slice's 2 chains take the three launches and the batch's 4 the chained
    one: one chained launch for the batch, the rows and qk gradients per slice; the gradients those of the slices'
    own three launches (WHOLE_BATCH_STATE_GRADS "0") to bf16 rounding."""
    from neox_metala.ops import metala_core_triton

    for name, value in (("CHAINED_BACKWARD", "auto"), ("WHOLE_BATCH_STATE_GRADS", "auto"), ("STORED_ROWS_BYTES", 1)):
        monkeypatch.setattr(metala_core_triton, name, value)
    monkeypatch.setattr(metala_core_triton, "_multiprocessors", lambda device: 8)
    q, logits, v, cotangent = (t.bfloat16() for t in draw(2, 8192, 2, 64, 128, "mild"))
    calls = triton_runs.record_launches(monkeypatch, metala_core_triton)
    grads = metala_core_triton.metala_core_bwd(q, logits, v, SCALE, NORMALIZER, cotangent)
    names = [kernel.fn.__name__ for kernel, _, _ in calls]
    assert names.count("chained_grads_kernel") == 1 and "state_grad_updates_kernel" not in names, names
    assert names.count("decay_rows_kernel") == 2, names
    monkeypatch.setattr(metala_core_triton, "WHOLE_BATCH_STATE_GRADS", "0")
    sliced = metala_core_triton.metala_core_bwd(q, logits, v, SCALE, NORMALIZER, cotangent)
    for name, got, want in zip(("q", "gate_logits", "v"), grads, sliced):
        assert triton_runs.relative_error(got, want.double()) <= 1e-2, name

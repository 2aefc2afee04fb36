"""Launchers of MetaLA's core kernels (ops/metala_core_kernels.py, metala_core_output_kernels.py and
metala_core_grad_kernels.py). Forward: the chunks' state updates (chunk-parallel), the scan over chunks that turns them
into the state entering each chunk (sequential, in place), then one chunk-parallel kernel for the output. Backward:
the same two for the states (or the forward's, if kept), the chunks' decay rows (STORED_DECAY_ROWS), their
state-gradient updates and the reverse scan over them, then the chunk-parallel gradients: dq and d gate logits by one
kernel (a program per chunk), dv by another (a program per chunk and V block: in the first one's V loop, a form
removed in session 26, it made that loop hold five dots and spill its scores). The kernels that form the chunks'
scores run twice (`_by_form`: the factorised chunks, then those of strong decay). Eleven launches per forward +
backward pair with kept states, thirteen without; the backward's per batch slice.

Two levels, because the scans are sequential over chunks: at T = 8192, B·H = 16 scans whose steps formed their chunk's
update (a log decay load, a cross-warp cumsum, a dot: ~1.9 µs a step on an H200) took ~60% of the core's time; that
is independent of the carried state, so it runs for all chunks at once, and a step is a load and a multiply-add.

States are stored in the inputs' dtype (bf16 for training): the state is an average of values (k = 1 − α, so
S_t = α S_t−1 + (1 − α) v per channel, |S| ≤ max |v|), and every use of a state is a dot operand in that dtype
anyway; the scans carry them in fp32. Kept states cost B·N·H·K·V elements (33 MB per layer in bf16 at B=8, T=2048,
H=8, K=64, V=128: twice q). The updates are written into the states' (and the state gradients') own buffer, in the
inputs' dtype too (|U| ≤ max |v|: fp16 holds it): emulated in PyTorch at T=2048, the bf16 states' error against
fp64 goes from 1.7e-3 to 2.2e-3; an fp32 buffer of updates would double the bytes the scan reads.

Every launch goes through ops/triton_launch.py (Triton's launch path costs ~50 µs of host time per launch).
Imports triton on first use: `import neox_metala.ops.metala_core_triton` needs triton, nothing else here does.
"""

from __future__ import annotations

import functools
import os

import torch

from .metala_core import CHUNK_SIZE
from .triton_launch import launch

# The interpreter (TRITON_INTERPRET=1, CPU tests) cannot time configurations: it gets the first of each
FIRST_CONFIG_ONLY = os.environ.get("TRITON_INTERPRET") == "1"

STORED_DECAY_ROWS = True
"""The backward's decay rows: each chunk's G per token (fp32, one B·T·H·K buffer, 34 MB per layer at B8 T2048 H8
K64, freed with the backward), written by decay_rows_kernel at the memory's rate and read by the qk-gradient kernel
instead of formed again there (logsigmoid's series, a scan along the chunk; its sm90 bf16 build 4,944 instructions
instead of 6,248), which takes the log decay as G's steps (G_t − G_t−1, the row before read again from the cache).
H200, B32 T2048 H16: core f+b 3.40 ms against 3.45 formed (session 27); the log decay stored as a second buffer
until session 28, at 3.33 ms against 3.19 now (the rows kernel 170 -> 118 µs per step, two batch slices instead of
four). The state-gradient updates stored the rows until session 27, at 0.57 instead of 0.31 ms (219 registers
against 128); dv forms them unless DV_READS_ROWS. Read at every backward, so that a benchmark can time both forms
in one process."""


FAST_EXP = True
"""The core kernels' e^x by libdevice's fast_expf (ex2.approx.ftz: results below 2^-126 flushed to zero; the largest
change is logsigmoid(x) = 0 instead of ≈ −e^−x for gate logits x > 87, a key below 1e-38 instead of a subnormal one)
instead of tl.exp (ex2.approx.f32, whose subnormal handling takes ~3 more instructions per element). sm90 bf16
builds, session 28: qk gradients 3,256 -> 2,936 instructions, output 3,504 -> 3,104, dv 3,648 -> 3,232, state
updates 2,616 -> 2,304, state-gradient updates 2,360 -> 2,144, registers within each build's budget. Read when
ops/metala_core_kernels.py is imported (the first kernel launch), never in the interpreter (no libdevice). H200, B32
T2048 H16 (session 29, with DV_READS_ROWS): core f+b 3.174 -> 3.058 ms; block 13.76 / 13.75 -> 13.55 ms
(bench/layer.py --flip, bench/core_ncu.py --flip; bench/core_sass.py --fast-exp for the builds)."""


DV_READS_ROWS = True
"""dv's decay terms read from the backward's rows of G (STORED_DECAY_ROWS; the log decay as G's steps) instead of
formed from the gate logits: the logsigmoid series and the in-chunk scan gone from the kernel for a read of 16 KB
instead of 8 per chunk and head. sm90 bf16 builds (session 28): at 4 warps, BV 128, accumulating, 3,648 -> 3,072
instructions (246 -> 237 registers; with FAST_EXP 3,232 -> 2,528), under the 168 cap with V_STEPS 2: 3,440 -> 2,128
(32 B spilled; with FAST_EXP 1,784 and none). Until session 28 the rows were two buffers, and reading both spilled.
H200 (session 29): dv 250 -> 226 µs per call with FAST_EXP. Read at every backward."""


def _block(n: int) -> int:
    """A block width for n columns: a power of 2, at least 16 (tl.dot's smallest)."""
    return max(16, 1 << (n - 1).bit_length())


def _precision(dtype: torch.dtype) -> str:
    # fp32 inputs are the accuracy reference on the GPU: exact fp32 products, not TF32's 10-bit mantissa
    return "ieee" if dtype == torch.float32 else "tf32"


@functools.cache
def _kernels():
    """The kernels, autotuned over a few configurations each (each one compiles on first use of a shape)."""
    import triton

    from . import metala_core_grad_kernels as grad_kernels
    from . import metala_core_kernels as kernels
    from . import metala_core_output_kernels as output_kernels

    # Few configurations, each compiled once per shape. Register use read from sm90 builds (ptxas, triton 3.9):
    # the chunk gradients spill ~1 KB at BV=64 but ≤ 120 B at BV ≤ 32 with 8 warps.
    # The chunk gradients with 4 warps are left out: Triton 3.6's bf16 build of them reads out of bounds when T is
    # below one chunk (an illegal address on the H200, 2026-11-29; fp16 / fp32 and the other configs are clean).
    def configs(blocks):
        """(meta-parameters, warps, stages[, register cap]) -> the configurations."""
        configs = [
            triton.Config(block, num_warps=w, num_stages=s, maxnreg=(cap or [None])[0]) for block, w, s, *cap in blocks
        ]
        return configs[:1] if FIRST_CONFIG_ONLY else configs

    # The key: the shape and the constexprs that make another build (Triton adds the tensors' dtypes, not those):
    # keyed by the shape alone, a pick timed for one build was taken for another (the plain dv's for the accumulating
    # one: 169 µs per call against 135 with its own, H200, session 23). FACTORISED left out on purpose: the strong
    # launch takes the factorised chunks' pick rather than compiling every configuration of its build.
    key = ["NT", "H", "K", "V", "ACCUMULATE", "STORED", "AUG"]
    # The scan's step is a load and a multiply-add, so small blocks cost little and give programs at small B·H:
    # B·H = 16, K = 64, V = 128 makes 128 programs of 32 x 32 or 16 x 64, 256 of 16 x 32. STAGES − 1 steps' loads in
    # flight hide the memory's latency (≤ 30 KB of shared memory, no spills at 8). Its key has no H (not an argument).
    # It works in place, so timing a configuration must restore the updates it overwrites.
    scan_blocks = [
        ({"BK": 32, "BV": 32, "STAGES": 8}, 4, 1),
        ({"BK": 16, "BV": 64, "STAGES": 8}, 4, 1),
        ({"BK": 32, "BV": 64, "STAGES": 8}, 4, 1),
        ({"BK": 16, "BV": 32, "STAGES": 8}, 2, 1),
        ({"BK": 32, "BV": 32, "STAGES": 4}, 4, 1),
    ]
    scan = triton.autotune(configs(scan_blocks), key=["NT", "K", "V"], restore_value=["buffer"])
    # Every list below: the first configuration is the interpreter's (small blocks, so that its tests at V = 32 see
    # several V blocks); the others are the fastest of bench/core_configs.py's wider candidates on an H200 (bf16,
    # B8 T2048 and B2 T8192, 2026-11-29: the core f+b 0.741 -> 0.565 ms with all of them, states recomputed).
    # The updates: fastest with whole rows of V per program (one decay cumsum per chunk instead of one per V block);
    # BV >= 64 spills in fp32 (a test-only path on GPUs), so the autotuner, which tunes per dtype, keeps 32 there.
    update_blocks = [({"BV": 16}, 4, 1), ({"BV": 32}, 4, 1), ({"BV": 64}, 4, 1), ({"BV": 128}, 4, 1)]
    # The state-gradient updates and dv are latency-bound at two programs per SM (ncu on an H200, B32 T2048 H16 bf16,
    # session 19: 12% achieved occupancy, 0.6 eligible warps per scheduler, 39-42% issue slots busy): capped at 168
    # registers they run three (the updates spill nothing, dv 176 B). bench/core_configs.py (B64 T2048 and B16 T8192
    # H8, kept states): core f+b 3.96 -> 3.87 ms for each, 3.77 for both. In bench/layer.py's block the updates went
    # 0.68 -> 0.58 ms and dv stayed at 0.75 (its build that adds into the projection's gradient spills 416 B capped).
    # Not faster: the output kernel capped the same way (1% slower), the qk gradients capped at 128 or 168 (672 / 448 B
    # spilled), and 8-warp programs capped at 128 (two per SM) for all three (offered to the autotuners: no change).
    capped = ({"BV": 128}, 4, 1, 168)
    # The qk gradients (bf16, Triton 3.6, sm90 builds: bench/core_build.py): 8 warps at ~254 registers (the sums after
    # the V loop take them; the loop alone 94), no spills at BV 64; 4 warps spill ~1.2 KB, besides the out-of-bounds
    # read above. The first block splits V = 32, so that the interpreter's tests run the loop twice. Slower on an
    # H200 (docs/benchmarks.md): the channels split over K blocks (core f+b 0.633 against 0.577 ms), the V loop and
    # the sums after it as two kernels (0.594 against 0.586), a V loop per channel block (KSTEP, session 15), 16 warps
    # (session 21). BV 64 at 3 stages: the V loop's two steps' loads issued together before the first step's dots
    # (session 20, the model's build at B32 T2048 H16: 447 -> 411 µs per call; in the block 1.68 -> 1.56 ms).
    qk_grads_blocks = [({"BV": 16}, 8, 2), ({"BV": 32}, 8, 1), ({"BV": 64}, 8, 3)]
    # dv recomputes its chunk's scores in each program (one BT x BT x K product, as output_kernel). No spills in
    # bf16: 4 warps take 255 registers (two programs per SM), 8 warps 149 (one), or 128 under the cap (two); fp32
    # (tests) spills 0.2-2 KB. BV 128, one program per chunk, was the fastest of 11 on an H200 (bench/core_configs.py
    # --kernels chunk_dv, B8 T2048 and B2 T8192 bf16, 2026-11-30): at 4 warps 0.05 ms per call below the best BV 64.
    # Two V blocks of 64 per program (V_STEPS: the scores formed once, the second block's loads issued by the
    # pipelining) at 3 stages under the 168 cap: in the model's build at B32 T2048 H16 (session 20) 175 -> 161 µs per
    # call, in the block 0.765 -> 0.676 ms. The same steps in output_kernel were slower at every configuration tried
    # (595-954 against 564 µs): it keeps one block. The first configuration steps twice through V = 32 (interpreter).
    dv_blocks = [
        ({"BV": 16, "V_STEPS": 2}, 4, 2),
        ({"BV": 64}, 4, 1),
        ({"BV": 64}, 4, 2),
        ({"BV": 64}, 8, 1, 128),
        ({"BV": 128}, 8, 1),
        ({"BV": 128}, 4, 1),
        capped,
        ({"BV": 64, "V_STEPS": 2}, 4, 3, 168),
    ]
    # Timing a configuration runs the kernel again: with ACCUMULATE (ops/mixer_op.py) each run would add into the
    # gradients once more, so the autotuner restores them (a copy at tuning time only)
    grads = dict(key=key, restore_value=["dq", "d_gate_logits"])
    return {
        "state_updates": triton.autotune(configs(update_blocks), key=key)(kernels.state_updates_kernel),
        "state_grad_updates": triton.autotune(configs([*update_blocks, capped]), key=key)(
            kernels.state_grad_updates_kernel
        ),
        "scan": scan(kernels.scan_kernel),
        "output": triton.autotune(configs([({}, 8, 2), ({}, 4, 2), ({}, 8, 3)]), key=key)(output_kernels.output_kernel),
        "chunk_qk_grads": triton.autotune(configs(qk_grads_blocks), **grads)(grad_kernels.chunk_grads_kernel),
        "chunk_dv": triton.autotune(configs(dv_blocks), key=key, restore_value=["dv"])(grad_kernels.chunk_dv_kernel),
        # sm90 bf16 builds: 96 registers at 4 warps, 62 at 8 (250 at 2)
        "decay_rows": triton.autotune(configs([({}, 4, 1), ({}, 8, 1)]), key=["NT", "H", "K"])(
            grad_kernels.decay_rows_kernel
        ),
    }


def check_inputs(q, gate_logits, v):
    if q.dim() != 4 or gate_logits.shape != q.shape or v.dim() != 4 or v.shape[:3] != q.shape[:3]:
        raise ValueError(
            f"MetaLA core: q, gate_logits must be (B, T, H, K) and v (B, T, H, V) with the same B, T, H; got "
            f"q {tuple(q.shape)}, gate_logits {tuple(gate_logits.shape)}, v {tuple(v.shape)}"
        )
    if q.dtype not in (torch.bfloat16, torch.float16, torch.float32) or {v.dtype, gate_logits.dtype} != {q.dtype}:
        raise ValueError(
            f"MetaLA core: q, gate_logits and v must share one of bf16/fp16/fp32, got {q.dtype}, "
            f"{gate_logits.dtype} and {v.dtype}"
        )


def token_rows(x):
    """(x, its row stride): x as the kernels read it, each token's H·D channels contiguous and its (batch, token)
    rows one stride apart (a view of the (B, T, 3W) projection as it is, without a copy), else a contiguous copy."""
    batch, seq, heads, dim = x.shape
    # a size-1 dimension's stride is arbitrary: at T = 1 the rows are the batch's
    row = x.stride(1) if seq > 1 else x.stride(0) if batch > 1 else heads * dim
    fits = (
        x.stride(-1) == 1
        and (heads == 1 or x.stride(-2) == dim)
        and row >= heads * dim
        and (batch == 1 or seq == 1 or x.stride(0) == seq * row)
    )
    if not fits:
        x, row = x.contiguous(), heads * dim
    return x, row


def _sizes(q, v, chunk_size):
    batch, seq, heads, head_k_dim = q.shape
    head_v_dim = v.shape[-1]
    return dict(
        T=seq,
        NT=-(-seq // chunk_size),
        H=heads,
        K=head_k_dim,
        V=head_v_dim,
        BT=chunk_size,
        PRECISION=_precision(q.dtype),
    ), batch * heads


def _inputs(q, gate_logits, v):
    """The inputs in the kernels' layout (token_rows) and their row strides, as the kernels' keyword arguments."""
    (q, stride_q), (gate_logits, stride_g), (v, stride_v) = (token_rows(t) for t in (q, gate_logits, v))
    return q, gate_logits, v, dict(stride_q=stride_q, stride_g=stride_g, stride_v=stride_v)


def _scan(buffer, decays, sizes, batch_heads, reverse):
    grid = lambda meta: (-(-sizes["K"] // meta["BK"]), -(-sizes["V"] // meta["BV"]), batch_heads)
    launch(_kernels()["scan"], grid, buffer, decays, sizes["NT"], sizes["K"], sizes["V"], REVERSE=reverse)


def _chunks_grid(sizes, batch_heads):
    """(chunks, B·H, V blocks): a program per chunk and V_STEPS blocks of BV (1 when a kernel has no V_STEPS)."""
    return lambda meta: (sizes["NT"], batch_heads, -(-sizes["V"] // (meta["BV"] * meta.get("V_STEPS", 1))))


STRONG_CHUNKS = 128  # per program of a strong-decay launch at most: one load of their decays, mostly nothing more


def _by_form(kernel, grid, *args, **kwargs):
    """`kernel` launched on the factorised chunks, a program per chunk of `grid` (a tuple, or a function of the
    meta-parameters), then on the chunks of strong decay, up to STRONG_CHUNKS per program."""
    launch(kernel, grid, *args, **kwargs, FACTORISED=True)
    chunks = grid if callable(grid) else lambda meta: grid
    per_program = min(STRONG_CHUNKS, _block(kwargs["NT"]))  # a power of 2 (tl.arange)
    strong = lambda meta: (-(-chunks(meta)[0] // per_program), *chunks(meta)[1:])  # noqa: E731
    launch(kernel, strong, *args, **kwargs, FACTORISED=False, STRONG_CHUNKS=per_program)


def _chunk_states(q, gate_logits, v, normalizer, strides, chunk_size):
    sizes, batch_heads = _sizes(q, v, chunk_size)
    states = q.new_empty(batch_heads // sizes["H"], sizes["H"], sizes["NT"], sizes["K"], sizes["V"])
    decays = q.new_empty(batch_heads, sizes["NT"], sizes["K"], dtype=torch.float32)
    launch(
        _kernels()["state_updates"],
        _chunks_grid(sizes, batch_heads),
        v,
        gate_logits,
        states,
        decays,
        strides["stride_v"],
        strides["stride_g"],
        normalizer,
        **sizes,
        BK=_block(sizes["K"]),
    )
    _scan(states, decays, sizes, batch_heads, reverse=False)
    return states, decays


def chunk_states(q, gate_logits, v, normalizer, chunk_size=CHUNK_SIZE):
    """(B, H, N, K, V) in q's dtype: the state entering each chunk, from a zero state."""
    check_inputs(q, gate_logits, v)
    q, gate_logits, v, strides = _inputs(q, gate_logits, v)
    return _chunk_states(q, gate_logits, v, normalizer, strides, chunk_size)[0]


def metala_core_fwd(q, gate_logits, v, scale, normalizer, chunk_size=CHUNK_SIZE, keep_states=False, augmentation=None):
    """q, gate_logits (B, T, H, K), v (B, T, H, V), one dtype, log α = logsigmoid(gate_logits) / normalizer ->
    (o (B, T, H, V) contiguous in v's dtype, the states if keep_states else None); the inputs may be views of one
    projection (token_rows). `augmentation` (a (B, T, H) fp32, aug_balance (H·K)): the output kernel also writes
    the self-augmentation's a = Σ_k q·key·w into a (ops/mixer_op.py's CORE_A)."""
    check_inputs(q, gate_logits, v)
    q, gate_logits, v, strides = _inputs(q, gate_logits, v)
    sizes, batch_heads = _sizes(q, v, chunk_size)
    states, decays = _chunk_states(q, gate_logits, v, normalizer, strides, chunk_size)
    out = v.new_empty(v.shape)
    a, w = (decays, decays) if augmentation is None else augmentation  # placeholders without
    _by_form(
        _kernels()["output"], (sizes["NT"], batch_heads, 1), q, gate_logits, v, states, decays, out, w, a, scale,
        **strides, normalizer=normalizer, **sizes, BK=_block(sizes["K"]), BV=_block(sizes["V"]),
        BF16=q.dtype == torch.bfloat16, AUG=augmentation is not None,
    )  # fmt: skip
    return out, (states if keep_states else None)


def _gradient_rows(grads, q, v):
    """(dq, d gate logits, dv) and their row strides: the given ones (views of the projection's gradient, in its
    layout, ops/mixer_op.py) or new contiguous ones (d gate logits in fp32)."""
    if grads is None:
        grads = (q.new_empty(q.shape), q.new_empty(q.shape, dtype=torch.float32), v.new_empty(v.shape))
    rows = [token_rows(t) for t in grads]
    if any(t is not given for (t, _), given in zip(rows, grads)):
        raise ValueError("MetaLA core: the gradients to write into must have each token's channels contiguous")
    return rows


STORED_ROWS_BYTES = 128 * 2**20
"""The backward runs in batch slices whose STORED_DECAY_ROWS buffer takes at most about this much: at the block
benchmark's B32 T2048 H16 the rows of the whole batch (then two buffers, 537 MB) were all alive at the backward's
peak, which put the block's peak memory above attention's (bench/layer.py on an H200, session 18: +4.05 GB against
+3.77; in slices +3.44; session 28, one buffer in slices of 128 MiB: +3.52); the 380M model's 2 x 8192 or 8 x 2048
tokens per layer take 34 MB, one slice. Every (batch, head) is independent in every kernel here, so the slices change
no result. Read at every backward, as STORED_DECAY_ROWS."""


def metala_core_bwd(q, gate_logits, v, scale, normalizer, d_out, states=None, chunk_size=CHUNK_SIZE, grads=None,
                    accumulate=False, augmentation=None):  # fmt: skip
    """-> (dq, d_gate_logits (fp32), dv), contiguous, for the cotangent d_out; `states` from
    metala_core_fwd(keep_states=True), else recomputed. `grads`: (dq, d gate logits, dv) tensors to write into
    instead (any dtype; channels contiguous, tokens one row stride apart), added to what they hold if accumulate.
    `augmentation`: (da (B, T, H) fp32, aug_balance (H·K)): the self-augmentation's terms of dq and d gate logits
    (ops/epilogue_kernels.py) formed here and added to the core's; `accumulate` then applies to dv only."""
    check_inputs(q, gate_logits, v)
    q, gate_logits, v, strides = _inputs(q, gate_logits, v)
    d_out = d_out.to(v.dtype).contiguous()
    rows = _gradient_rows(grads, q, v)
    sizes, _ = _sizes(q, v, chunk_size)
    batch = q.shape[0]
    # one sequence's share of _backward_slice's fp32 rows, (B·H, N·BT, K)
    per_batch = sizes["H"] * sizes["NT"] * chunk_size * sizes["K"] * 4 if STORED_DECAY_ROWS else 0
    step = max(1, min(batch, STORED_ROWS_BYTES // max(per_batch, 1)))
    for start in range(0, batch, step):
        part = slice(start, start + step)
        _backward_slice(
            q[part], gate_logits[part], v[part], scale, normalizer, d_out[part], strides,
            None if states is None else states[part], chunk_size, [(t[part], row) for t, row in rows], accumulate,
            None if augmentation is None else (augmentation[0][part], augmentation[1]),
        )  # fmt: skip
    return tuple(t for t, _ in rows)


def _backward_slice(q, gate_logits, v, scale, normalizer, d_out, strides, states, chunk_size, rows, accumulate,
                    augmentation):  # fmt: skip
    """metala_core_bwd on one batch slice: its inputs in the kernels' layout, `rows` the gradients and their strides."""
    sizes, batch_heads = _sizes(q, v, chunk_size)
    if states is None:
        states = _chunk_states(q, gate_logits, v, normalizer, strides, chunk_size)[0]
    state_grads = torch.empty_like(states)
    decays = q.new_empty(batch_heads, sizes["NT"], sizes["K"], dtype=torch.float32)
    stored = STORED_DECAY_ROWS
    stride_q, stride_g = strides["stride_q"], strides["stride_g"]
    cums = decays  # a placeholder that no kernel reads, unless stored
    if stored:  # each chunk's G per token (fp32)
        cums = q.new_empty(batch_heads, sizes["NT"] * chunk_size, sizes["K"], dtype=torch.float32)
        launch(
            _kernels()["decay_rows"], (sizes["NT"], batch_heads),
            gate_logits, cums, stride_g, normalizer, sizes["T"], sizes["NT"], H=sizes["H"], K=sizes["K"],
            BT=sizes["BT"], BK=_block(sizes["K"]),
        )  # fmt: skip
    launch(
        _kernels()["state_grad_updates"], _chunks_grid(sizes, batch_heads),
        q, gate_logits, d_out, state_grads, decays, scale, stride_q, stride_g, normalizer, **sizes,
        BK=_block(sizes["K"]),
    )  # fmt: skip
    _scan(state_grads, decays, sizes, batch_heads, reverse=True)
    (dq, stride_dq), (d_gate_logits, stride_dg), (dv, stride_dv) = rows
    blocks = dict(BK=_block(sizes["K"]), BF16=q.dtype == torch.bfloat16, ACCUMULATE=accumulate)
    aug = (decays, decays) if augmentation is None else augmentation  # placeholders without
    # (with self-augmentation, dv's term stays the epilogue's, which the dv kernel adds to)
    _by_form(
        _kernels()["chunk_qk_grads"], (sizes["NT"], batch_heads),
        q, gate_logits, v, d_out, states, state_grads, decays, cums, dq, d_gate_logits, *aug, scale,
        **strides, stride_dq=stride_dq, stride_dg=stride_dg, normalizer=normalizer, **sizes, **blocks, STORED=stored,
        AUG=augmentation is not None,
    )  # fmt: skip
    _by_form(
        _kernels()["chunk_dv"], _chunks_grid(sizes, batch_heads),
        q, gate_logits, cums, d_out, state_grads, decays, dv, scale, stride_q, stride_g, stride_dv, normalizer,
        **sizes, **blocks, STORED=stored and DV_READS_ROWS,
    )  # fmt: skip


class MetaLACoreTriton(torch.autograd.Function):
    """The kernels under autograd, recomputing the states in backward (tests; the model uses the custom op)."""

    @staticmethod
    def forward(ctx, q, gate_logits, v, scale, normalizer):
        ctx.save_for_backward(q, gate_logits, v)
        ctx.scale, ctx.normalizer = scale, normalizer
        return metala_core_fwd(q, gate_logits, v, scale, normalizer)[0]

    @staticmethod
    def backward(ctx, d_out):
        q, gate_logits, v = ctx.saved_tensors
        return (*metala_core_bwd(q, gate_logits, v, ctx.scale, ctx.normalizer, d_out), None, None)

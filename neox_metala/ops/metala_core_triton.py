"""Launchers of MetaLA's core kernels (ops/metala_core_kernels.py, metala_core_output_kernels.py and
metala_core_grad_kernels.py). Forward: the chunks' state updates (chunk-parallel), the scan over chunks that turns them
into the state entering each chunk (sequential, in place), then one chunk-parallel kernel for the output; where it is
the faster, all three as one chained launch (CHAINED_FORWARD, ops/metala_core_chains.py). Backward:
the same two for the states (or the forward's, if kept), the chunks' decay rows (STORED_DECAY_ROWS), their
state-gradient updates and the reverse scan over them, then the chunk-parallel gradients: dq and d gate logits by one
kernel (a program per chunk; its factorised launch by ops/metala_core_gluon.py's where that is built for it), dv by
another (a program per chunk and V block); where it is the faster, the state-gradient updates, their scan and dv as
one chained launch (CHAINED_BACKWARD, ops/metala_core_chains.py). The kernels that form the chunks'
scores run twice (`_by_form`: the factorised chunks, then those of strong decay). Seven launches per forward +
backward pair with kept states, nine without (both directions by three launches: eleven and thirteen); the
backward's per batch slice.

Two levels, because the scans are sequential over chunks: at T = 8192, B·H = 16 scans whose steps formed their chunk's
update (a log decay load, a cross-warp cumsum, a dot: ~1.9 µs a step on an H200) took ~60% of the core's time; that
is independent of the carried state, so it runs for all chunks at once, and a step is a load and a multiply-add.

States are stored in the inputs' dtype (bf16 for training): the state is an average of values (k = 1 − α, so
S_t = α S_t−1 + (1 − α) v per channel, |S| ≤ max |v|), and every use of a state is a dot operand in that dtype
anyway; the scans carry them in fp32. Kept states cost B·N·H·K·V elements (33 MB per layer in bf16 at B=8, T=2048,
H=8, K=64, V=128: twice q). The updates are written into the states' (and the state gradients') own buffer, in the
inputs' dtype too (|U| ≤ max |v|: fp16 holds it): emulated in PyTorch at T=2048, the bf16 states' error against
fp64 goes from 1.7e-3 to 2.2e-3; an fp32 buffer of updates would double the bytes the scan reads.

Every launch goes through ops/triton_launch.py (Triton's launch path costs ~50 µs of host time per launch); the
configurations each kernel is autotuned over are ops/metala_core_configs.py's (`_kernels()`).
Imports triton on first use: `import neox_metala.ops.metala_core_triton` needs triton, nothing else here does.
"""

from __future__ import annotations

import functools
import os

import torch

from . import metala_core_gluon
from .metala_core import CHUNK_SIZE
from .metala_core_chains import chained as _chained
from .metala_core_chains import chained_grads as _chained_grads
from .metala_core_configs import kernels as _kernels
from .metala_core_inputs import block as _block
from .metala_core_inputs import check_inputs
from .metala_core_inputs import doublings as _doublings
from .metala_core_inputs import gradient_rows as _gradient_rows
from .metala_core_inputs import inputs as _inputs
from .metala_core_inputs import scan_buffers as _scan_buffers
from .metala_core_inputs import sizes as _sizes
from .triton_launch import launch

STORED_DECAY_ROWS = True
"""The backward's decay rows: each chunk's G per token (fp32, one B·T·H·K buffer, 34 MB per layer at B8 T2048 H8
K64, freed with the backward), written by decay_rows_kernel at the memory's rate and read by the qk-gradient kernel
instead of formed again there (logsigmoid's series and a scan along the chunk: 6,248 against 4,944 sm90
instructions), which takes the log decay as G's steps (G_t − G_t−1, the row before read again from the cache).
H200, B32 T2048 H16: core f+b 3.19 ms against 3.45 formed (sessions 27-28, docs/benchmarks.md). Read at every
backward, so that a benchmark can time both forms in one process."""


FAST_EXP = True
"""The core kernels' e^x by libdevice's fast_expf (ex2.approx.ftz: results below 2^-126 flushed to zero, e.g.
logsigmoid(x) = 0 instead of ≈ −e^−x for gate logits x > 87) instead of tl.exp, whose subnormal handling takes ~3
more instructions per element (sm90 builds: 8-12% fewer instructions per kernel; H200, B32 T2048 H16, session 29:
core f+b 3.174 -> 3.058 ms). Read when ops/metala_core_kernels.py is imported (the first kernel launch), never in
the interpreter (no libdevice)."""

DV_READS_ROWS = True
"""dv's decay terms read from the backward's rows of G (STORED_DECAY_ROWS) instead of formed from the gate logits:
the logsigmoid series and the in-chunk scan gone from the kernel for a read of 16 KB instead of 8 per chunk and head
(sm90, 4 warps, BV 128: 3,232 -> 2,528 instructions; H200, session 29: dv 250 -> 226 µs per call). Read at every
backward."""


QK_K_SPLIT = True
"""The qk-gradient kernel's autotuner is also offered configurations that split each chunk's channels over K_SPLIT
programs (ops/metala_core_configs.py's QK_K_SPLIT_BLOCKS; `chunk_grads_kernel`'s K_SPLIT): the unsplit kernel runs
one 8-warp program per SM at 255 registers and is latency-bound (ncu, session 19: 0.41 eligible warps per scheduler).
A channel's gradients depend on the others only through the chunk's do vᵀ, which each program forms again, reading
v and do once more from the L2 (the kernel orders a chunk's programs one after another). H200, B32 T2048 H16 bf16
(sessions 31-32): K_SPLIT 2 at 4 warps 1,294 -> 1,215 µs per step, the block 0.896 -> 0.884 of attention's at T 2048.
Its bf16 miscompile where the V loop runs once: `metala_core_configs.qk_split_prune`. False: the unsplit
configurations only. Read when the autotuners are built (the first launch)."""


CHAINED_FORWARD = os.environ.get("NEOX_METALA_CHAINED_FORWARD", "auto")
"""The forward's states and outputs by one launch (ops/metala_core_chained_kernels.py: each chunk's program waits for
the state entering its chunk, published by the program of the chunk before) and output_kernel's strong-decay launch,
instead of the chunks' updates, the scan over them and output_kernel's two launches, which pass the (B·H, N, K, V)
states through memory three times. "auto" (default): where `_chained_forward` expects it to be the faster; "1":
always; "0": never (should a GPU ever not start a grid's programs in order, which its waits rely on). Read at every
forward, so that a benchmark can time both forms in one process. H200, B32 T2048 / B8 T8192 H16 bf16 (session 34):
750 / 666 µs against 764 / 778; the block 0.872 / 0.517 of attention's against 0.873 / 0.524. The backward's
recomputed states stay the two launches': without the outputs the chained kernel took ~620 against 395 µs."""

CHAINED_BACKWARD = os.environ.get("NEOX_METALA_CHAINED_BACKWARD", "auto")
"""The backward's state gradients and dv by one launch (ops/metala_core_chained_grad_kernels.py: the forward's chain
mirrored, from the last chunk to the first) and chunk_dv_kernel's strong-decay launch, instead of the state-gradient
updates, the reverse scan over them and dv's two launches. "auto" (default): by the forward's rule on each batch slice
(`_chained_backward`); "1": always; "0": never. Read at every backward. H200, kept states, accumulating, bf16
(session 42, bench/core_ncu.py): B32 T2048 H16 (two slices of 256 chains) core f+b 2.619 ms against 2.666 by the
three launches (388 µs per slice against 117 + 71 + 219); B8 T8192 (two slices of 64 chains of 128 chunks, where the
rule takes the three launches) 421 against 414 µs forced. In bench/layer.py's block at T 2048: 0.836-0.861 ms per
step against 0.877 for the three kernels (session 41)."""

CHAINED_UNHIDDEN_CHUNKS = 48
"""Up to this many chunks per chain the chained forward is the faster even where its chains are too few to hide their
steps: it then takes ~N · 3.1 µs (a chain's step on an H200, session 35), the three launches ~130 µs + N · 0.55 µs."""


def _chained_forward(chunks: int, batch_heads: int, device: torch.device) -> bool:
    """Whether the forward takes the chained launch (CHAINED_FORWARD; "auto": `_chain_rule`)."""
    return _chain_rule(CHAINED_FORWARD, "NEOX_METALA_CHAINED_FORWARD", chunks, batch_heads, device)


def _chained_backward(chunks: int, batch_heads: int, device: torch.device) -> bool:
    """Whether the backward takes the chained launch (CHAINED_BACKWARD; "auto": `_chain_rule`)."""
    return _chain_rule(CHAINED_BACKWARD, "NEOX_METALA_CHAINED_BACKWARD", chunks, batch_heads, device)


def _chain_rule(switch: str, name: str, chunks: int, batch_heads: int, device: torch.device) -> bool:
    """Whether a chained launch is taken: `switch` "1" or "0", else ("auto") with at most CHAINED_UNHIDDEN_CHUNKS
    chunks per chain, or with at least one chain per two SMs, whose programs (two per SM, ~12 µs each) then hide a
    chain's steps. H200, kept states, bf16, K 64, V 128 (session 36, docs/benchmarks.md): chained / three launches
    0.78-1.01 at 32 chunks (16-512 chains), 0.73 at 128 chunks and 128 chains, 1.6-2.2 at 128 chunks and 8-32 chains
    (2.15 for the 380M model's 2 x 8192 tokens of 8 heads, whose whole model went 1.545x -> 1.593x the plain
    baseline's tokens/s without it). The interpreter runs programs one after another: there it is always taken."""
    if switch not in ("auto", "1", "0"):
        raise ValueError(f"{name} is {switch!r}: set it to auto (the default), 1 or 0")
    if switch != "auto":
        return switch == "1"
    if device.type != "cuda":
        return True
    return chunks <= CHAINED_UNHIDDEN_CHUNKS or 2 * batch_heads >= _multiprocessors(device)


@functools.cache
def _multiprocessors(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def _scan(buffer, decays, sizes, batch_heads, reverse):
    grid = lambda meta: (-(-sizes["K"] // meta["BK"]), -(-sizes["V"] // meta["BV"]), batch_heads)
    launch(_kernels()["scan"], grid, buffer, decays, sizes["NT"], sizes["K"], sizes["V"], REVERSE=reverse)


def _chunks_grid(sizes, batch_heads):
    """(chunks, B·H, V blocks): a program per chunk and V_STEPS blocks of BV (1 when a kernel has no V_STEPS)."""
    return lambda meta: (sizes["NT"], batch_heads, -(-sizes["V"] // (meta["BV"] * meta.get("V_STEPS", 1))))


STRONG_CHUNKS = 128  # per program of a strong-decay launch at most: one load of their decays, mostly nothing more


def _by_form(kernel, grid, *args, **kwargs):
    """`kernel` launched on the factorised chunks, a program per chunk of `grid` (a tuple, or a function of the
    meta-parameters), then on the chunks of strong decay (`_strong_form`)."""
    launch(kernel, grid, *args, **kwargs, FACTORISED=True)
    _strong_form(kernel, grid, *args, **kwargs)


def _strong_form(kernel, grid, *args, **kwargs):
    """`kernel` launched on the chunks of strong decay, up to STRONG_CHUNKS per program."""
    chunks = grid if callable(grid) else lambda meta: grid
    per_program = min(STRONG_CHUNKS, _block(kwargs["NT"]))  # a power of 2 (tl.arange)
    strong = lambda meta: (-(-chunks(meta)[0] // per_program), *chunks(meta)[1:])  # noqa: E731
    launch(kernel, strong, *args, **kwargs, FACTORISED=False, STRONG_CHUNKS=per_program)


def _chunk_states(q, gate_logits, v, normalizer, strides, chunk_size):
    sizes, batch_heads = _sizes(q, v, chunk_size)
    states, decays = _scan_buffers(q, sizes, batch_heads)
    launch(
        _kernels()["state_updates"], _chunks_grid(sizes, batch_heads),
        v, gate_logits, states, decays, strides["stride_v"], strides["stride_g"], normalizer, **sizes,
        BK=_block(sizes["K"]),
    )  # fmt: skip
    _scan(states, decays, sizes, batch_heads, reverse=False)
    return states, decays


def _state_grads(q, gate_logits, d_out, scale, normalizer, strides, sizes, batch_heads):
    """(the state gradients, each chunk's decays e^G_last): slot n holds dh_n+1, the last slot zero."""
    state_grads, decays = _scan_buffers(q, sizes, batch_heads)
    launch(
        _kernels()["state_grad_updates"], _chunks_grid(sizes, batch_heads),
        q, gate_logits, d_out, state_grads, decays, scale, strides["stride_q"], strides["stride_g"], normalizer,
        **sizes, BK=_block(sizes["K"]),
    )  # fmt: skip
    _scan(state_grads, decays, sizes, batch_heads, reverse=True)
    return state_grads, decays


def _state_grads_by_form(q, gate_logits, d_out, scale, normalizer, strides, sizes, batch_heads, dv_rows, accumulate):
    """(the state gradients, the chunks' decays, how chunk_dv_kernel is then launched): by the chained launch where
    `_chained_backward` takes it, which writes the factorised chunks' dv into dv_rows too (then `_strong_form`), else
    by the updates and their scan (then `_by_form`)."""
    if _chained_backward(sizes["NT"], batch_heads, q.device):
        args = (q, gate_logits, d_out, scale, normalizer, strides, sizes, batch_heads, dv_rows, accumulate)
        return (*_chained_grads(*args), _strong_form)
    return (*_state_grads(q, gate_logits, d_out, scale, normalizer, strides, sizes, batch_heads), _by_form)


def chunk_states(q, gate_logits, v, normalizer, chunk_size=CHUNK_SIZE):
    """(B, H, N, K, V) in q's dtype: the state entering each chunk, from a zero state."""
    check_inputs(q, gate_logits, v)
    q, gate_logits, v, strides = _inputs(q, gate_logits, v)
    return _chunk_states(q, gate_logits, v, normalizer, strides, chunk_size)[0]


def chunk_state_grads(q, gate_logits, d_out, scale, normalizer, chunk_size=CHUNK_SIZE):
    """(B, H, N, K, V) in q's dtype: slot n the gradient of Σ output · d_out with respect to the state entering chunk
    n + 1 (zero in the last slot); by the backward's form (`_state_grads_by_form`)."""
    check_inputs(q, gate_logits, d_out)
    # the kernel reads d out contiguous, as metala_core_bwd hands it over
    q, gate_logits, d_out, strides = _inputs(q, gate_logits, d_out.contiguous())
    sizes, batch_heads = _sizes(q, d_out, chunk_size)
    dv_rows = (d_out.new_empty(d_out.shape), sizes["H"] * sizes["V"])  # the chained launch's dv, unused
    args = (q, gate_logits, d_out, scale, normalizer, strides, sizes, batch_heads, dv_rows, False)
    return _state_grads_by_form(*args)[0]


def metala_core_fwd(q, gate_logits, v, scale, normalizer, chunk_size=CHUNK_SIZE, keep_states=False, augmentation=None):
    """q, gate_logits (B, T, H, K), v (B, T, H, V), one dtype, log α = logsigmoid(gate_logits) / normalizer ->
    (o (B, T, H, V) contiguous in v's dtype, the states if keep_states else None); the inputs may be views of one
    projection (token_rows). `augmentation` (a (B, T, H) fp32, aug_balance (H·K)): the output kernel also writes
    the self-augmentation's a = Σ_k q·key·w into a (ops/mixer_op.py's CORE_A)."""
    check_inputs(q, gate_logits, v)
    q, gate_logits, v, strides = _inputs(q, gate_logits, v)
    sizes, batch_heads = _sizes(q, v, chunk_size)
    out = v.new_empty(v.shape)
    if _chained_forward(sizes["NT"], batch_heads, q.device):
        # the factorised chunks' outputs with the states; the others' by output_kernel's strong form
        states, decays = _chained(q, gate_logits, v, scale, normalizer, strides, sizes, batch_heads, out, augmentation)
        by_form = _strong_form
    else:
        states, decays = _chunk_states(q, gate_logits, v, normalizer, strides, chunk_size)
        by_form = _by_form
    a, w = (decays, decays) if augmentation is None else augmentation  # placeholders without
    by_form(
        _kernels()["output"], (sizes["NT"], batch_heads, 1), q, gate_logits, v, states, decays, out, w, a, scale,
        **strides, normalizer=normalizer, **sizes, BK=_block(sizes["K"]), BV=_block(sizes["V"]),
        BF16=q.dtype == torch.bfloat16, AUG=augmentation is not None,
    )  # fmt: skip
    return out, (states if keep_states else None)


STORED_ROWS_BYTES = 128 * 2**20
"""The backward runs in batch slices whose STORED_DECAY_ROWS buffer takes at most about this much: at the block
benchmark's B32 T2048 H16 the rows of the whole batch (then two buffers, 537 MB) were all alive at the backward's
peak, which put the block's peak memory above attention's (bench/layer.py on an H200, session 18: +4.05 GB against
+3.77; in slices +3.44; session 28, one buffer in slices of 128 MiB: +3.52); the 380M model's 2 x 8192 or 8 x 2048
tokens per layer take 34 MB, one slice. Every (batch, head) is independent in every kernel here, so the slices change
no result. Read at every backward, as STORED_DECAY_ROWS."""


WHOLE_BATCH_STATE_GRADS = "auto"
"""The backward's state gradients and dv's factorised chunks (`_state_grads_by_form`) over the whole batch before the
slices (rows, qk gradients, dv's other launch). "auto" (default): where the batch takes the chained launch by
`_chain_rule` and a slice would not (B8 T8192 H16: a slice's 64 chains against the batch's 128), since elsewhere it
only holds the batch's state gradients at once; "1": always; "0": never. H200, B8 T8192 H16 (session 45): core f+b
2.543 against 2.668 ms, the block 0.511 against 0.515 of attention's, peak 0.968 against 0.932. Read at every
backward."""


def _whole_batch_state_grads(chunks: int, heads: int, batch: int, step: int, device: torch.device) -> bool:
    """Whether metala_core_bwd forms the state gradients over the whole batch (WHOLE_BATCH_STATE_GRADS)."""
    switch = WHOLE_BATCH_STATE_GRADS
    if switch != "auto":  # "1" or "0", checked as the chained launches' switches are
        return _chain_rule(switch, "WHOLE_BATCH_STATE_GRADS", chunks, batch * heads, device)
    by_slice, by_batch = (_chained_backward(chunks, n * heads, device) for n in (step, batch))
    return by_batch and not by_slice


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
    sizes, batch_heads = _sizes(q, v, chunk_size)
    batch, heads = q.shape[0], sizes["H"]
    # one sequence's share of _backward_slice's fp32 rows, (B·H, N·BT, K)
    per_batch = heads * sizes["NT"] * chunk_size * sizes["K"] * 4 if STORED_DECAY_ROWS else 0
    step = max(1, min(batch, STORED_ROWS_BYTES // max(per_batch, 1)))
    whole = None
    if _whole_batch_state_grads(sizes["NT"], heads, batch, step, q.device):
        args = (q, gate_logits, d_out, scale, normalizer, strides, sizes, batch_heads, rows[2], accumulate)
        whole = _state_grads_by_form(*args)
    for start in range(0, batch, step):
        part = slice(start, start + step)
        _backward_slice(
            q[part], gate_logits[part], v[part], scale, normalizer, d_out[part], strides,
            None if states is None else states[part], chunk_size, [(t[part], row) for t, row in rows], accumulate,
            None if augmentation is None else (augmentation[0][part], augmentation[1]),
            None if whole is None else (whole[0][part], whole[1][start * heads : (start + step) * heads], whole[2]),
        )  # fmt: skip
    return tuple(t for t, _ in rows)


def _backward_slice(q, gate_logits, v, scale, normalizer, d_out, strides, states, chunk_size, rows, accumulate,
                    augmentation, state_grads_by_form=None):  # fmt: skip
    """metala_core_bwd on one batch slice: its inputs in the kernels' layout, `rows` the gradients and their strides;
    `state_grads_by_form`: the slice's share of `_state_grads_by_form`'s, formed over the whole batch."""
    sizes, batch_heads = _sizes(q, v, chunk_size)
    if states is None:
        states = _chunk_states(q, gate_logits, v, normalizer, strides, chunk_size)[0]
    stored = STORED_DECAY_ROWS
    stride_q, stride_g = strides["stride_q"], strides["stride_g"]
    cums = q  # a placeholder that no kernel reads, unless stored
    if stored:  # each chunk's G per token (fp32)
        cums = q.new_empty(batch_heads, sizes["NT"] * chunk_size, sizes["K"], dtype=torch.float32)
        launch(
            _kernels()["decay_rows"], (sizes["NT"], batch_heads),
            gate_logits, cums, stride_g, normalizer, sizes["T"], sizes["NT"], H=sizes["H"], K=sizes["K"],
            BT=sizes["BT"], BK=_block(sizes["K"]),
        )  # fmt: skip
    (dq, stride_dq), (d_gate_logits, stride_dg), (dv, stride_dv) = rows
    state_grads, decays, dv_form = state_grads_by_form or _state_grads_by_form(
        q, gate_logits, d_out, scale, normalizer, strides, sizes, batch_heads, (dv, stride_dv), accumulate
    )
    blocks = dict(BK=_block(sizes["K"]), BF16=q.dtype == torch.bfloat16, ACCUMULATE=accumulate)
    aug = (decays, decays) if augmentation is None else augmentation  # placeholders without
    # (with self-augmentation, dv's term stays the epilogue's, which the dv kernels add to)
    qk_args = (q, gate_logits, v, d_out, states, state_grads, decays, cums, dq, d_gate_logits, *aug, scale)
    qk_kwargs = dict(**strides, stride_dq=stride_dq, stride_dg=stride_dg, normalizer=normalizer, **sizes, **blocks,
                     STORED=stored, AUG=augmentation is not None, DOUBLINGS=_doublings(normalizer))  # fmt: skip
    # a chunk's K_SPLIT programs split program_id(0) in the factorised launch (chunk_grads_kernel's grid)
    split = lambda meta: meta.get("K_SPLIT", 1)  # noqa: E731
    if not metala_core_gluon.qk_grads(batch_heads, *qk_args, **qk_kwargs):  # the factorised chunks, where it is built
        launch(_kernels()["chunk_qk_grads"], lambda m: (sizes["NT"] * split(m), batch_heads, 1), *qk_args,
               **qk_kwargs, FACTORISED=True)  # fmt: skip
    _strong_form(_kernels()["chunk_qk_grads"], lambda m: (sizes["NT"], batch_heads, split(m)), *qk_args, **qk_kwargs)
    dv_form(
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

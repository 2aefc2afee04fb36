"""Launchers of MetaLA's core kernels (ops/metala_core_kernels.py, ops/metala_core_grad_kernels.py). Forward: the
chunks' state updates (chunk-parallel), the scan over chunks that turns them into the state entering each chunk
(sequential, in place), then one chunk-parallel kernel for the output. Backward: the same two for the states (or the
forward's, if kept), the chunks' state-gradient updates and the reverse scan over them, then the chunk-parallel
gradients: dq and d log_decay by one kernel, dv by another (SPLIT_DV) or in the first one's V loop. Seven launches
per forward + backward pair with kept states, nine without (one fewer each with dv in the loop).

Two levels, because the scans are sequential over chunks: at T = 8192, B·H = 16 they took ~60% of the core's time
when each step formed its chunk's update itself (a log decay load, a cross-warp cumsum, a dot: ~1.9 µs a step on an
H200). All of that is independent of the carried state, so it now runs for all chunks at once, and a scan step is
a prefetched load and one multiply-add.

States are stored in the inputs' dtype (bf16 for training): the state is an average of values (k = 1 − α, so
S_t = α S_t−1 + (1 − α) v per channel, |S| ≤ max |v|), and every use of a state is a dot operand in that dtype
anyway; the scans carry them in fp32. Kept states cost B·N·H·K·V elements (33 MB per layer in bf16 at B=8, T=2048,
H=8, K=64, V=128: twice q), hence recomputation by default. The updates are written into the states' (and the
state gradients') own buffer, so they too are in the inputs' dtype: no memory beyond the (B, H, N, K) fp32 chunk
decays, for a rounding of each update as large as that of a stored state (its weights sum to at most 1, so
|U| ≤ max |v|, and fp16 holds it). The scan still sums in fp32; emulated in PyTorch at T=2048, the bf16 states' error
against fp64 goes from 1.7e-3 to 2.2e-3. An fp32 buffer of updates would double the bytes the scan reads.

Imports triton on first use: `import neox_metala.ops.metala_core_triton` needs triton, nothing else here does.
"""

from __future__ import annotations

import functools
import os

import torch

from .metala_core import CHUNK_SIZE

# The interpreter (TRITON_INTERPRET=1, CPU tests) cannot time configurations: it gets the first of each
FIRST_CONFIG_ONLY = os.environ.get("TRITON_INTERPRET") == "1"

SPLIT_DV = True
"""dv by its own kernel (chunk_dv_kernel, a program per V block, two per SM) rather than in the V loop of
chunk_grads_kernel, which runs one program per chunk and per SM at 255 registers: latency-bound, 366 µs per call
of the H200's 0.7 ms core f+b at B8 T2048, its chunk's scores kept through the loop and spilled. Without dv, that
loop holds three dots instead of five and nothing spills. Read at every backward, so that a benchmark can time both
forms in one process."""


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

    key = ["NT", "H", "K", "V"]
    # The scan's step is a load and a multiply-add, so small blocks cost little and give programs at small B·H:
    # B·H = 16, K = 64, V = 128 makes 128 programs of 32 x 32 or 16 x 64, 256 of 16 x 32. STAGES − 1 steps' loads
    # in flight hide the memory's latency behind the steps (≤ 30 KB of shared memory, no spills at 8). Its key has
    # no H (not an argument); NT tells apart the shapes of one run. The scan works in place, so timing a
    # configuration must restore the updates it overwrites.
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
    # The chunk gradients without dv (bf16, Triton 3.6): still 255 registers at 8 warps whatever BV or stages,
    # which the intra-chunk gradients after the V loop take (the loop alone: 94), but no spills at one stage and
    # 8 B at two or three (136 B with dv). 4 warps spill 800 B, besides the out-of-bounds read above. The first
    # block splits V = 32, so that the interpreter's tests run the loop twice.
    qk_grads_blocks = [({"BV": 16}, 8, 2), ({"BV": 32}, 8, 1), ({"BV": 64}, 8, 1)]
    # dv recomputes its chunk's scores in each V block's program (one BT x BT x K product, as output_kernel).
    # No spills in bf16: 4 warps take 255 registers (two programs per SM), 8 warps 149 (one), or 128 under the cap
    # (two). fp32 (tests) spills 0.2-2 KB. The first block splits V = 32, so that the interpreter's tests see a
    # second V block.
    dv_blocks = [({"BV": 16}, 4, 1), ({"BV": 64}, 4, 1), ({"BV": 64}, 4, 2), ({"BV": 64}, 8, 1, 128)]
    return {
        "state_updates": triton.autotune(configs(update_blocks), key=key)(kernels.state_updates_kernel),
        "state_grad_updates": triton.autotune(configs(update_blocks), key=key)(kernels.state_grad_updates_kernel),
        "scan": scan(kernels.scan_kernel),
        "output": triton.autotune(configs([({}, 8, 2), ({}, 4, 2), ({}, 8, 3)]), key=key)(kernels.output_kernel),
        "chunk_grads": triton.autotune(configs([({"BV": 32}, 8, 2), ({"BV": 16}, 8, 2)]), key=key)(
            grad_kernels.chunk_grads_kernel
        ),
        "chunk_qk_grads": triton.autotune(configs(qk_grads_blocks), key=key)(grad_kernels.chunk_grads_kernel),
        "chunk_dv": triton.autotune(configs(dv_blocks), key=key)(grad_kernels.chunk_dv_kernel),
    }


def check_inputs(q, log_decay, v):
    if q.dim() != 4 or log_decay.shape != q.shape or v.dim() != 4 or v.shape[:3] != q.shape[:3]:
        raise ValueError(
            f"MetaLA core: q, log_decay must be (B, T, H, K) and v (B, T, H, V) with the same B, T, H; got "
            f"q {tuple(q.shape)}, log_decay {tuple(log_decay.shape)}, v {tuple(v.shape)}"
        )
    if log_decay.dtype != torch.float32:
        raise ValueError(f"MetaLA core: log_decay must be float32 (the decay's precision), got {log_decay.dtype}")
    if q.dtype not in (torch.bfloat16, torch.float16, torch.float32) or v.dtype != q.dtype:
        raise ValueError(f"MetaLA core: q and v must share one of bf16/fp16/fp32, got {q.dtype} and {v.dtype}")


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


def _scan(buffer, decays, sizes, batch_heads, reverse):
    grid = lambda meta: (-(-sizes["K"] // meta["BK"]), -(-sizes["V"] // meta["BV"]), batch_heads)
    _kernels()["scan"][grid](buffer, decays, sizes["NT"], sizes["K"], sizes["V"], REVERSE=reverse)


def _updates_grid(sizes, batch_heads):
    return lambda meta: (sizes["NT"], batch_heads, -(-sizes["V"] // meta["BV"]))


def chunk_states(q, log_decay, v, chunk_size=CHUNK_SIZE):
    """(B, H, N, K, V) in q's dtype: the state entering each chunk, from a zero state."""
    sizes, batch_heads = _sizes(q, v, chunk_size)
    states = q.new_empty(batch_heads // sizes["H"], sizes["H"], sizes["NT"], sizes["K"], sizes["V"])
    decays = log_decay.new_empty(batch_heads, sizes["NT"], sizes["K"])
    _kernels()["state_updates"][_updates_grid(sizes, batch_heads)](
        v, log_decay, states, decays, **sizes, BK=_block(sizes["K"])
    )
    _scan(states, decays, sizes, batch_heads, reverse=False)
    return states


def metala_core_fwd(q, log_decay, v, scale, chunk_size=CHUNK_SIZE, keep_states=False):
    """q, log_decay (B, T, H, K), v (B, T, H, V), all contiguous -> (o (B, T, H, V) in v's dtype, the states if
    keep_states else None)."""
    check_inputs(q, log_decay, v)
    sizes, batch_heads = _sizes(q, v, chunk_size)
    states = chunk_states(q, log_decay, v, chunk_size)
    out = torch.empty_like(v)
    block_v = _block(sizes["V"])
    grid = (sizes["NT"], batch_heads, 1)
    _kernels()["output"][grid](
        q, log_decay, v, states, out, scale, **sizes, BK=_block(sizes["K"]), BV=block_v, BF16=q.dtype == torch.bfloat16
    )
    return out, (states if keep_states else None)


def metala_core_bwd(q, log_decay, v, scale, d_out, states=None, chunk_size=CHUNK_SIZE):
    """-> (dq, d_log_decay (fp32), dv) for the cotangent d_out; `states` from metala_core_fwd(keep_states=True),
    else recomputed."""
    check_inputs(q, log_decay, v)
    d_out = d_out.to(v.dtype).contiguous()
    sizes, batch_heads = _sizes(q, v, chunk_size)
    if states is None:
        states = chunk_states(q, log_decay, v, chunk_size)
    state_grads = torch.empty_like(states)
    decays = log_decay.new_empty(batch_heads, sizes["NT"], sizes["K"])
    _kernels()["state_grad_updates"][_updates_grid(sizes, batch_heads)](
        q, log_decay, d_out, state_grads, decays, scale, **sizes, BK=_block(sizes["K"])
    )
    _scan(state_grads, decays, sizes, batch_heads, reverse=True)
    dq, d_log_decay, dv = torch.empty_like(q), torch.empty_like(log_decay), torch.empty_like(v)
    blocks = dict(BK=_block(sizes["K"]), BF16=q.dtype == torch.bfloat16)
    grads = (q, log_decay, v, d_out, states, state_grads, dq, d_log_decay, dv, scale)
    if SPLIT_DV:
        _kernels()["chunk_qk_grads"][(sizes["NT"], batch_heads)](*grads, **sizes, **blocks, DV=False)
        dv_grid = _updates_grid(sizes, batch_heads)
        _kernels()["chunk_dv"][dv_grid](q, log_decay, d_out, state_grads, dv, scale, **sizes, **blocks)
    else:
        _kernels()["chunk_grads"][(sizes["NT"], batch_heads)](*grads, **sizes, **blocks, DV=True)
    return dq, d_log_decay, dv


class MetaLACoreTriton(torch.autograd.Function):
    """The kernels under autograd, recomputing the states in backward (tests; the model uses the custom op)."""

    @staticmethod
    def forward(ctx, q, log_decay, v, scale):
        q, log_decay, v = (t.contiguous() for t in (q, log_decay, v))
        ctx.save_for_backward(q, log_decay, v)
        ctx.scale = scale
        return metala_core_fwd(q, log_decay, v, scale)[0]

    @staticmethod
    def backward(ctx, d_out):
        q, log_decay, v = ctx.saved_tensors
        return (*metala_core_bwd(q, log_decay, v, ctx.scale, d_out), None)

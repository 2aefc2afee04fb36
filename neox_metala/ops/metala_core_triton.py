"""Launchers of MetaLA's core kernels (ops/metala_core_kernels.py): forward = a scan over chunks writing the state
entering each chunk, then one chunk-parallel kernel for the output; backward = the state scan again (or the
forward's states, if kept), the reverse scan for the states' gradients, then one chunk-parallel kernel for dq, dv
and d log_decay. Four launches per forward + backward pair, five without kept states.

States are stored in the inputs' dtype (bf16 for training): the state is an average of values (k = 1 − α, so
S_t = α S_t−1 + (1 − α) v per channel, |S| ≤ max |v|), and every use of a state is a dot operand in that dtype
anyway; the scans carry them in fp32. Kept states cost B·N·H·K·V elements (33 MB per layer in bf16 at B=8, T=2048,
H=8, K=64, V=128: twice q), hence recomputation by default.

Imports triton on first use: `import neox_metala.ops.metala_core_triton` needs triton, nothing else here does.
"""

from __future__ import annotations

import functools
import os

import torch

from .metala_core import CHUNK_SIZE


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

    from . import metala_core_kernels as kernels

    # Few configurations, each compiled once per shape. Register use read from sm90 builds (ptxas, triton 3.9):
    # 2 warps spill in the scans; the chunk gradients spill ~1 KB at BV=64 but ≤ 120 B at BV ≤ 32 with 8 warps.
    # The chunk gradients with 4 warps are left out: Triton 3.6's bf16 build of them reads out of bounds when T is
    # below one chunk (an illegal address on the H200, 2026-11-29; fp16 / fp32 and the other configs are clean).
    # The interpreter (TRITON_INTERPRET=1, CPU tests) cannot time configurations: it gets the first of each.
    first_only = os.environ.get("TRITON_INTERPRET") == "1"

    # Scans: blocks of K as well as V, for parallelism when B·H is small (16 programs per block pair at B=2, H=8).
    def scan_configs():
        blocks = [(32, 32, 4), (64, 32, 4), (64, 64, 8), (32, 64, 4)]  # the interpreter's: K split
        configs = [triton.Config({"BK": bk, "BV": bv}, num_warps=w) for bk, bv, w in blocks]
        return configs[:1] if first_only else configs

    def chunk_configs(blocks):
        configs = [triton.Config(block, num_warps=w, num_stages=s) for block, w, s in blocks]
        return configs[:1] if first_only else configs

    key = ["NT", "H", "K", "V"]
    return {
        "states": triton.autotune(scan_configs(), key=key)(kernels.state_scan_kernel),
        "state_grads": triton.autotune(scan_configs(), key=key)(kernels.state_grad_scan_kernel),
        "output": triton.autotune(chunk_configs([({}, 8, 2), ({}, 4, 2), ({}, 8, 3)]), key=key)(kernels.output_kernel),
        "chunk_grads": triton.autotune(chunk_configs([({"BV": 32}, 8, 2), ({"BV": 16}, 8, 2)]), key=key)(
            kernels.chunk_grads_kernel
        ),
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


def chunk_states(q, log_decay, v, chunk_size=CHUNK_SIZE):
    """(B, H, N, K, V) in q's dtype: the state entering each chunk, from a zero state."""
    sizes, batch_heads = _sizes(q, v, chunk_size)
    states = q.new_empty(batch_heads // sizes["H"], sizes["H"], sizes["NT"], sizes["K"], sizes["V"])
    grid = lambda meta: (-(-sizes["K"] // meta["BK"]), -(-sizes["V"] // meta["BV"]), batch_heads)
    _kernels()["states"][grid](v, log_decay, states, **sizes)
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
    grid = lambda meta: (-(-sizes["K"] // meta["BK"]), -(-sizes["V"] // meta["BV"]), batch_heads)
    _kernels()["state_grads"][grid](q, log_decay, d_out, state_grads, scale, **sizes)
    dq, d_log_decay, dv = torch.empty_like(q), torch.empty_like(log_decay), torch.empty_like(v)
    _kernels()["chunk_grads"][(sizes["NT"], batch_heads)](
        q,
        log_decay,
        v,
        d_out,
        states,
        state_grads,
        dq,
        d_log_decay,
        dv,
        scale,
        **sizes,
        BK=_block(sizes["K"]),
        BF16=q.dtype == torch.bfloat16,
    )
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

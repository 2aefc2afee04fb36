"""fla's chunk_gla (no carried state) as two PyTorch custom ops with autograd: the GPU core of training.

Why custom ops: fla's own `chunk_gla` is an autograd Function that torch.compile may not trace, so a compiled
block (layers/block.py) ended its graph at every call, and each graph break nested inside the mixer's calls
split the block into ~7 compiled pieces per pass, whose host-side overhead left the GPU idle half of each step.
As an opaque op with a declared output shape, the core sits inside one compiled graph per block and direction.

The forward keeps what fla's Function keeps (the inputs and the fp32 intra-chunk scores A); the backward is
fla's `chunk_gla_bwd`. A CPU kernel (the pure-PyTorch chunked form, gradients by recomputation) lets the CPU
tests check the op, its autograd and its place in a compiled block.
"""

from __future__ import annotations

import torch

from .options import DEFAULT_CHUNK_SIZE


def fla_chunk_size(seq: int) -> int:
    return min(64, max(16, 1 << (seq - 1).bit_length()))  # what fla's own chunk_gla picks


def fla_chunk_forward(q, key, v, log_decay, scale):
    """fla's chunk_gla forward from a zero state (internal API of fla 0.6, pinned in pyproject.toml), called
    directly so that only the intra-chunk scores A are kept: (o, scores)."""
    from fla.ops.gla.chunk import chunk_gla_fwd

    _, scores, _, _, output = chunk_gla_fwd(
        q=q,
        k=key,
        v=v,
        g=log_decay,
        g_cumsum=None,
        scale=scale,
        initial_state=None,
        output_final_state=False,
        chunk_size=fla_chunk_size(q.shape[1]),
    )
    return output, scores


def fla_chunk_backward(q, key, v, log_decay, scale, scores, d_output):
    """fla's chunk_gla backward for `fla_chunk_forward`: (dq, dkey, dv, dlog_decay) as fla returns them."""
    from fla.ops.gla.chunk import chunk_gla_bwd

    dq, dkey, dv, dlog_decay, _ = chunk_gla_bwd(
        q=q,
        k=key,
        v=v,
        g=log_decay,
        g_cumsum=None,
        scale=scale,
        initial_state=None,
        h=None,
        A=scores,
        do=d_output,
        dht=None,
        chunk_size=fla_chunk_size(q.shape[1]),
    )
    return dq, dkey, dv, dlog_decay


@torch.library.custom_op("neox_metala::gla_forward", mutates_args=(), device_types="cuda")
def gla_forward(
    q: torch.Tensor, key: torch.Tensor, v: torch.Tensor, log_decay: torch.Tensor, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """q, key (B, T, H, K) and v (B, T, H, V) in one dtype, log_decay (B, T, H, K) fp32 -> (o (B, T, H, V),
    scores (B, T, H, chunk) fp32, what the backward reads)."""
    q, key, v, log_decay = (t.contiguous() for t in (q, key, v, log_decay))
    return fla_chunk_forward(q, key, v, log_decay, scale)


@gla_forward.register_fake
def _(q, key, v, log_decay, scale):
    batch, seq, heads, _ = q.shape
    return v.new_empty(v.shape), q.new_empty(batch, seq, heads, fla_chunk_size(seq), dtype=torch.float32)


@gla_forward.register_kernel("cpu")
def _(q, key, v, log_decay, scale):
    from .chunked import chunked_gla

    output, _ = chunked_gla(q, key, v, log_decay, scale, chunk_size=DEFAULT_CHUNK_SIZE)
    batch, seq, heads, _ = q.shape
    return output.to(v.dtype).contiguous(), q.new_zeros(batch, seq, heads, fla_chunk_size(seq), dtype=torch.float32)


@torch.library.custom_op("neox_metala::gla_backward", mutates_args=(), device_types="cuda")
def gla_backward(
    q: torch.Tensor,
    key: torch.Tensor,
    v: torch.Tensor,
    log_decay: torch.Tensor,
    scores: torch.Tensor,
    d_output: torch.Tensor,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    q, key, v, log_decay, d_output = (t.contiguous() for t in (q, key, v, log_decay, d_output))
    dq, dkey, dv, dlog_decay = fla_chunk_backward(q, key, v, log_decay, scale, scores, d_output)
    return dq.to(q.dtype), dkey.to(key.dtype), dv.to(v.dtype), dlog_decay.to(log_decay.dtype)


@gla_backward.register_fake
def _(q, key, v, log_decay, scores, d_output, scale):
    return tuple(t.new_empty(t.shape) for t in (q, key, v, log_decay))  # contiguous, as fla's


@gla_backward.register_kernel("cpu")
def _(q, key, v, log_decay, scores, d_output, scale):
    from .chunked import chunked_gla

    # torch.func, not autograd: an op's kernel runs below the autograd dispatch key
    _, vjp = torch.func.vjp(
        lambda *inputs: chunked_gla(*inputs, scale, chunk_size=DEFAULT_CHUNK_SIZE)[0], q, key, v, log_decay
    )
    return tuple(g.to(t.dtype).contiguous() for g, t in zip(vjp(d_output.to(v.dtype)), (q, key, v, log_decay)))


def _setup_context(ctx, inputs, output):
    q, key, v, log_decay, scale = inputs
    ctx.save_for_backward(q, key, v, log_decay, output[1])
    ctx.scale = scale


def _backward(ctx, d_output, _d_scores):
    q, key, v, log_decay, scores = ctx.saved_tensors
    return (*gla_backward(q, key, v, log_decay, scores, d_output.contiguous(), ctx.scale), None)


gla_forward.register_autograd(_backward, setup_context=_setup_context)


def gla_core(q, key, v, log_decay, scale: float) -> torch.Tensor:
    """o = GLA(q, key, v, log_decay) from a zero state, differentiable; see the module docstring."""
    # Contiguous here, where torch.compile writes them so from the fused kernels that make them; fla needs
    # them so and would otherwise copy each strided view eagerly inside the op (~3% of a 380M step).
    output, _ = gla_forward(q.contiguous(), key.contiguous(), v.contiguous(), log_decay.contiguous(), scale)
    return output

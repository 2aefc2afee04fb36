"""fla's chunk_gla (no carried state) as two PyTorch custom ops with autograd: the GPU core of training.

Why custom ops: fla's own `chunk_gla` is an autograd Function that torch.compile may not trace, so a compiled
block (layers/block.py) ended its graph at every call, and each graph break nested inside the mixer's calls
split the block into ~7 compiled pieces per pass, whose host-side overhead left the GPU idle half of each step.
As an opaque op with a declared output shape, the core sits inside one compiled graph per block and direction.

The forward keeps what fla's Function keeps (the inputs and the fp32 intra-chunk scores A); the backward is
fla's `chunk_gla_bwd`. A CPU kernel (the pure-PyTorch chunked form, gradients by recomputation) lets the CPU
tests check the op, its autograd and its place in a compiled block.

Packed documents: the ops take the (batch, seq) bool `document_starts` (fixed shape, so a compiled graph keeps
its shapes) and turn it into fla's varlen form inside the op: the batch flattened to one row and `cu_seqlens`,
one sequence per document (and per batch row).
"""

from __future__ import annotations

import torch

from .options import DEFAULT_CHUNK_SIZE


def fla_chunk_size(seq: int) -> int:
    return min(64, max(16, 1 << (seq - 1).bit_length()))  # what fla's own chunk_gla picks


def cumulative_lengths(document_starts: torch.Tensor) -> torch.Tensor:
    """(B, T) bool document starts -> fla's `cu_seqlens` (int64) of the batch flattened to B*T tokens: a sequence
    begins at every document start and at every row's first token.

    Its length depends on the data, so computing it waits for the GPU (a host sync). Every MetaLA layer's forward
    and backward asks for the same micro batch's lengths, so the last result is kept: one sync per micro batch
    instead of one per layer and direction (48 for 24 layers)."""
    key = (document_starts.data_ptr(), document_starts._version, tuple(document_starts.shape), document_starts.device)
    if _last_lengths and _last_lengths[0] == key:
        return _last_lengths[2]
    batch, seq = document_starts.shape
    starts = document_starts.clone()
    starts[:, 0] = True
    boundaries = starts.flatten().nonzero().flatten()  # data-dependent length: one host sync per call
    lengths = torch.cat([boundaries, boundaries.new_tensor([batch * seq])])
    # the tensor itself is held, so its memory cannot be reused by another tensor at the same address
    _last_lengths[:] = [key, document_starts, lengths]
    return lengths


_last_lengths: list = []  # [key, the document_starts tensor, its cu_seqlens] of the last call


def _as_one_row(*tensors):
    """(B, T, ...) -> (1, B*T, ...): fla's varlen layout."""
    return [t.reshape(1, -1, *t.shape[2:]) for t in tensors]


def fla_chunk_forward(q, key, v, log_decay, scale, document_starts=None):
    """fla's chunk_gla forward from a zero state (internal API of fla 0.6, pinned in pyproject.toml), called
    directly so that only the intra-chunk scores A are kept: (o, scores). With document_starts (B, T), its
    varlen form: each document starts from a zero state."""
    from fla.ops.gla.chunk import chunk_gla_fwd

    batch, seq = q.shape[:2]
    cu_seqlens = None
    if document_starts is not None:
        cu_seqlens = cumulative_lengths(document_starts)
        q, key, v, log_decay = _as_one_row(q, key, v, log_decay)
    _, scores, _, _, output = chunk_gla_fwd(
        q=q,
        k=key,
        v=v,
        g=log_decay,
        g_cumsum=None,
        scale=scale,
        initial_state=None,
        output_final_state=False,
        cu_seqlens=cu_seqlens,
        chunk_size=fla_chunk_size(seq),
    )
    if document_starts is not None:
        output, scores = output.view(batch, seq, *output.shape[2:]), scores.view(batch, seq, *scores.shape[2:])
    return output, scores


def fla_chunk_backward(q, key, v, log_decay, scale, scores, d_output, document_starts=None):
    """fla's chunk_gla backward for `fla_chunk_forward`: (dq, dkey, dv, dlog_decay) as fla returns them."""
    from fla.ops.gla.chunk import chunk_gla_bwd

    batch, seq = q.shape[:2]
    cu_seqlens = None
    if document_starts is not None:
        cu_seqlens = cumulative_lengths(document_starts)
        q, key, v, log_decay, scores, d_output = _as_one_row(q, key, v, log_decay, scores, d_output)
    grads = chunk_gla_bwd(
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
        cu_seqlens=cu_seqlens,
        chunk_size=fla_chunk_size(seq),
    )[:4]
    if document_starts is not None:
        grads = [g.view(batch, seq, *g.shape[2:]) for g in grads]
    return tuple(grads)


@torch.library.custom_op("neox_metala::gla_forward", mutates_args=(), device_types="cuda")
def gla_forward(
    q: torch.Tensor,
    key: torch.Tensor,
    v: torch.Tensor,
    log_decay: torch.Tensor,
    scale: float,
    document_starts: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """q, key (B, T, H, K) and v (B, T, H, V) in one dtype, log_decay (B, T, H, K) fp32, document_starts (B, T)
    bool or None -> (o (B, T, H, V), scores (B, T, H, chunk) fp32, what the backward reads)."""
    q, key, v, log_decay = (t.contiguous() for t in (q, key, v, log_decay))
    return fla_chunk_forward(q, key, v, log_decay, scale, document_starts)


@gla_forward.register_fake
def _(q, key, v, log_decay, scale, document_starts=None):
    batch, seq, heads, _ = q.shape
    return v.new_empty(v.shape), q.new_empty(batch, seq, heads, fla_chunk_size(seq), dtype=torch.float32)


@gla_forward.register_kernel("cpu")
def _(q, key, v, log_decay, scale, document_starts=None):
    from .chunked import chunked_gla

    output, _ = chunked_gla(q, key, v, log_decay, scale, chunk_size=DEFAULT_CHUNK_SIZE, document_starts=document_starts)
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
    document_starts: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    q, key, v, log_decay, d_output = (t.contiguous() for t in (q, key, v, log_decay, d_output))
    dq, dkey, dv, dlog_decay = fla_chunk_backward(q, key, v, log_decay, scale, scores, d_output, document_starts)
    return dq.to(q.dtype), dkey.to(key.dtype), dv.to(v.dtype), dlog_decay.to(log_decay.dtype)


@gla_backward.register_fake
def _(q, key, v, log_decay, scores, d_output, scale, document_starts=None):
    return tuple(t.new_empty(t.shape) for t in (q, key, v, log_decay))  # contiguous, as fla's


@gla_backward.register_kernel("cpu")
def _(q, key, v, log_decay, scores, d_output, scale, document_starts=None):
    from .chunked import chunked_gla

    def core(*inputs):
        return chunked_gla(*inputs, scale, chunk_size=DEFAULT_CHUNK_SIZE, document_starts=document_starts)[0]

    # torch.func, not autograd: an op's kernel runs below the autograd dispatch key
    _, vjp = torch.func.vjp(core, q, key, v, log_decay)
    return tuple(g.to(t.dtype).contiguous() for g, t in zip(vjp(d_output.to(v.dtype)), (q, key, v, log_decay)))


def _setup_context(ctx, inputs, output):
    q, key, v, log_decay, scale, document_starts = inputs
    ctx.save_for_backward(q, key, v, log_decay, output[1], document_starts)
    ctx.scale = scale


def _backward(ctx, d_output, _d_scores):
    q, key, v, log_decay, scores, document_starts = ctx.saved_tensors
    d_output = d_output.contiguous()
    return (*gla_backward(q, key, v, log_decay, scores, d_output, ctx.scale, document_starts), None, None)


gla_forward.register_autograd(_backward, setup_context=_setup_context)


def gla_core(q, key, v, log_decay, scale: float, document_starts=None) -> torch.Tensor:
    """o = GLA(q, key, v, log_decay) from a zero state (and from a zero state at every document start, given
    document_starts (B, T) bool), differentiable; see the module docstring."""
    # Contiguous here, where torch.compile writes them so from the fused kernels that make them; fla needs
    # them so and would otherwise copy each strided view eagerly inside the op (~3% of a 380M step).
    q, key, v, log_decay = (t.contiguous() for t in (q, key, v, log_decay))
    output, _ = gla_forward(q, key, v, log_decay, scale, document_starts)
    return output

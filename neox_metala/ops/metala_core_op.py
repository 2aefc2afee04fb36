"""MetaLA's own core kernels (ops/metala_core_triton.py) as two PyTorch custom ops with autograd: the default GPU
training core (key metala_core_kernel), in place of fla's chunk_gla behind ops/core_op.py, with its calling
convention minus the key and the decay: it takes the gate logits and forms log α = logsigmoid(logits) / normalizer
and the key k = -expm1(log α) inside the kernels, reading q, the logits and v as views of the layer's projection
(no copies made or saved).

Custom ops for the reason core_op.py gives (one compiled graph per block). The CPU kernels are the same algorithm
in PyTorch (ops/metala_core.py), so the CPU tests check the op, its autograd and its registrations.

The backward recomputes the per-chunk states by default (a scan as cheap as reading them back, and B·N·H·K·V
elements less memory per layer); `keep_states=True` saves them from the forward instead. Packed documents
(`document_starts`) are not supported by these kernels: use core_op.gla_core for them.
"""

from __future__ import annotations

import torch

from . import metala_core as chunk_form

CHUNK_SIZE = chunk_form.CHUNK_SIZE


def _no_states(q):
    return q.new_empty(0)


def _log_decay(gate_logits, normalizer):
    """log α by ops/metala.py's decay_and_key (the rule's one definition), for the CPU kernels: ops/metala_core.py,
    the kernels' specification, works on log_decay."""
    from .metala import decay_and_key

    return decay_and_key(gate_logits, normalizer)[0]


@torch.library.custom_op("neox_metala::metala_core_forward", mutates_args=(), device_types="cuda")
def metala_core_forward(
    q: torch.Tensor,
    gate_logits: torch.Tensor,
    v: torch.Tensor,
    scale: float,
    normalizer: float,
    keep_states: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """q, gate_logits (B, T, H, K), v (B, T, H, V), one dtype (views of the projection as they are) -> (o (B, T, H, V)
    contiguous, the states (B, H, N, K, V) if keep_states, else an empty tensor)."""
    from .metala_core_triton import metala_core_fwd

    output, states = metala_core_fwd(q, gate_logits, v, scale, normalizer, CHUNK_SIZE, keep_states)
    return output, (states if keep_states else _no_states(q))


@metala_core_forward.register_fake
def _(q, gate_logits, v, scale, normalizer, keep_states=False):
    batch, seq, heads, head_k_dim = q.shape
    chunks = -(-seq // CHUNK_SIZE)
    states = q.new_empty(batch, heads, chunks, head_k_dim, v.shape[-1]) if keep_states else _no_states(q)
    return v.new_empty(v.shape), states


@metala_core_forward.register_kernel("cpu")
def _(q, gate_logits, v, scale, normalizer, keep_states=False):
    log_decay = _log_decay(gate_logits, normalizer)
    output = chunk_form.metala_core_forward(q, log_decay, v, scale, CHUNK_SIZE)
    states = chunk_form.chunk_states(q, log_decay, v, CHUNK_SIZE) if keep_states else _no_states(q)
    return output.contiguous(), states.contiguous()  # the CPU backward recomputes what it needs


@torch.library.custom_op("neox_metala::metala_core_backward", mutates_args=(), device_types="cuda")
def metala_core_backward(
    q: torch.Tensor,
    gate_logits: torch.Tensor,
    v: torch.Tensor,
    states: torch.Tensor,
    d_output: torch.Tensor,
    scale: float,
    normalizer: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (dq, d_gate_logits (fp32), dv), contiguous; `states` from the forward, or empty to recompute them."""
    from .metala_core_triton import metala_core_bwd

    states = states if states.numel() else None
    return metala_core_bwd(q, gate_logits, v, scale, normalizer, d_output, states, CHUNK_SIZE)


def _gate_grad_dtype(q):
    return torch.promote_types(q.dtype, torch.float32)  # fp32, or fp64 for fp64 (CPU tests)


@metala_core_backward.register_fake
def _(q, gate_logits, v, states, d_output, scale, normalizer):
    return q.new_empty(q.shape), q.new_empty(q.shape, dtype=_gate_grad_dtype(q)), v.new_empty(v.shape)


@metala_core_backward.register_kernel("cpu")
def _(q, gate_logits, v, states, d_output, scale, normalizer):
    logits = gate_logits.to(_gate_grad_dtype(q))
    dq, d_log_decay, dv = chunk_form.metala_core_backward(
        q, _log_decay(logits, normalizer), v, scale, d_output, CHUNK_SIZE
    )
    d_gate_logits = d_log_decay.to(logits.dtype) * torch.sigmoid(-logits) / normalizer  # through logsigmoid / τ
    return dq.contiguous(), d_gate_logits.contiguous(), dv.contiguous()


def _setup_context(ctx, inputs, output):
    q, gate_logits, v, scale, normalizer, _ = inputs
    ctx.save_for_backward(q, gate_logits, v, output[1])
    ctx.scale, ctx.normalizer = scale, normalizer


def _backward(ctx, d_output, _d_states):
    q, gate_logits, v, states = ctx.saved_tensors
    dq, d_gate_logits, dv = metala_core_backward(
        q, gate_logits, v, states, d_output.contiguous(), ctx.scale, ctx.normalizer
    )
    return dq, d_gate_logits, dv, None, None, None


metala_core_forward.register_autograd(_backward, setup_context=_setup_context)


def metala_core(
    q, v, gate_logits, scale: float, normalizer: float, document_starts=None, keep_states: bool = False
) -> torch.Tensor:
    """o = the MetaLA core of (q, key = -expm1(log α), v, log α) from a zero state, differentiable, with
    log α = logsigmoid(gate_logits) / normalizer (ops/metala.py's decay_and_key, formed inside the kernels): as
    core_op.gla_core(q, key, v, log α, scale) without the key and the decay. q, gate_logits [B, T, H, K] and
    v [B, T, H, V] share a dtype and may be views of one projection (channels contiguous, tokens one row stride
    apart): the kernels read them in place, and the op saves those views, not copies. The gate logits' gradient
    comes back in fp32 (autograd casts it to their dtype).

    Example:
        >>> o = metala_core(q, v, gate_logits, q.shape[-1] ** -0.5, 16.0)
    """
    if document_starts is not None:
        raise ValueError(
            "MetaLA's own core kernels do not support packed documents (document_starts); "
            "use ops.core_op.gla_core (fla's varlen kernels) for them"
        )
    output, _ = metala_core_forward(q, gate_logits, v, scale, normalizer, keep_states)
    return output

"""MetaLA's own core kernels (ops/metala_core_triton.py) as two PyTorch custom ops with autograd: the default GPU
training core (key metala_core_kernel), in place of fla's chunk_gla behind ops/core_op.py, with its calling
convention minus the key (formed from the decay inside the kernels: k = -expm1(log_decay)).

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


@torch.library.custom_op("neox_metala::metala_core_forward", mutates_args=(), device_types="cuda")
def metala_core_forward(
    q: torch.Tensor, log_decay: torch.Tensor, v: torch.Tensor, scale: float, keep_states: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """q (B, T, H, K), log_decay (B, T, H, K) fp32, v (B, T, H, V) in q's dtype -> (o (B, T, H, V), the states
    (B, H, N, K, V) if keep_states, else an empty tensor)."""
    from .metala_core_triton import metala_core_fwd

    output, states = metala_core_fwd(q, log_decay, v, scale, CHUNK_SIZE, keep_states)
    return output, (states if keep_states else _no_states(q))


@metala_core_forward.register_fake
def _(q, log_decay, v, scale, keep_states=False):
    batch, seq, heads, head_k_dim = q.shape
    chunks = -(-seq // CHUNK_SIZE)
    states = q.new_empty(batch, heads, chunks, head_k_dim, v.shape[-1]) if keep_states else _no_states(q)
    return v.new_empty(v.shape), states


@metala_core_forward.register_kernel("cpu")
def _(q, log_decay, v, scale, keep_states=False):
    output = chunk_form.metala_core_forward(q, log_decay, v, scale, CHUNK_SIZE)
    states = chunk_form.chunk_states(q, log_decay, v, CHUNK_SIZE) if keep_states else _no_states(q)
    return output.contiguous(), states.contiguous()  # the CPU backward recomputes what it needs


@torch.library.custom_op("neox_metala::metala_core_backward", mutates_args=(), device_types="cuda")
def metala_core_backward(
    q: torch.Tensor,
    log_decay: torch.Tensor,
    v: torch.Tensor,
    states: torch.Tensor,
    d_output: torch.Tensor,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (dq, d_log_decay, dv); `states` from the forward, or empty to recompute them."""
    from .metala_core_triton import metala_core_bwd

    return metala_core_bwd(q, log_decay, v, scale, d_output, states if states.numel() else None, CHUNK_SIZE)


@metala_core_backward.register_fake
def _(q, log_decay, v, states, d_output, scale):
    return q.new_empty(q.shape), log_decay.new_empty(log_decay.shape), v.new_empty(v.shape)


@metala_core_backward.register_kernel("cpu")
def _(q, log_decay, v, states, d_output, scale):
    grads = chunk_form.metala_core_backward(q, log_decay, v, scale, d_output, CHUNK_SIZE)
    return tuple(g.contiguous() for g in grads)


def _setup_context(ctx, inputs, output):
    q, log_decay, v, scale, _ = inputs
    ctx.save_for_backward(q, log_decay, v, output[1])
    ctx.scale = scale


def _backward(ctx, d_output, _d_states):
    q, log_decay, v, states = ctx.saved_tensors
    dq, d_log_decay, dv = metala_core_backward(q, log_decay, v, states, d_output.contiguous(), ctx.scale)
    return dq, d_log_decay, dv, None, None


metala_core_forward.register_autograd(_backward, setup_context=_setup_context)


def metala_core(q, v, log_decay, scale: float, document_starts=None, keep_states: bool = False) -> torch.Tensor:
    """o = the MetaLA core of (q, key = -expm1(log_decay), v, log_decay) from a zero state, differentiable: as
    core_op.gla_core(q, key, v, log_decay, scale) without the key. q and v share a dtype, log_decay is fp32 (a
    wider q, as fp64 on the CPU, takes log_decay in q's dtype)."""
    if document_starts is not None:
        raise ValueError(
            "MetaLA's own core kernels do not support packed documents (document_starts); "
            "use ops.core_op.gla_core (fla's varlen kernels) for them"
        )
    q, v, log_decay = (t.contiguous() for t in (q, v, log_decay))
    output, _ = metala_core_forward(q, log_decay, v, scale, keep_states)
    return output

"""The one place that decides which kernel computes MetaLA's token mixing.

Dispatch rule (backend="auto"), logged once per (op, kernel, device, dtype):
  * CUDA tensor in bf16/fp16 and fla importable      -> fla: `chunk_gla` for training and prefill (with
    `fused=True`, inside `ops.fused`: one autograd Function with torch.compile-fused elementwise steps),
    `fused_recurrent_gla` for a one-token step without autograd; fla's Triton `causal_conv1d`.
  * anything else (CPU, fp32, fp64, no fla)          -> pure-PyTorch `chunked_gla` and `conv1d`.
    fp32 stays exact: fla's kernels compute fp32 dot products in TF32 (~1e-3 relative error, measured in
    tests/ops/test_ops_gpu.py); backend="fla" still forces them for fp32, with a warning.
`backend` may force "fla", "chunked" or "reference" (the step-by-step recurrence; slow, tests only).
fla is imported only when chosen, so this package imports on machines without triton.

Packed documents (`document_starts`, a (batch, seq) bool tensor, True where a document begins; training and
prefill only): the recurrent state and the short convolution restart there, on every backend, exactly as if
each document ran alone. fla: its varlen form (`cu_seqlens`, ops/core_op.py); PyTorch: masks (ops/chunked.py);
the short convolution: the masked shifted sum on every backend but "reference" (ops/causal_conv.py).
"""

from __future__ import annotations

import importlib.util
import logging

import torch
import torch.nn.functional as F

from . import reference
from .causal_conv import check_conv_inputs, short_conv_fla, short_conv_shifted, short_conv_torch
from .chunked import chunked_gla
from .epilogue_op import augment_norm_gate_op
from .input_checks import check_document_starts, check_gla_inputs
from .options import BACKENDS, DEFAULT_CHUNK_SIZE, MetaLAOptions, projection_widths

DEFAULT_OPTIONS = MetaLAOptions()
_FLA_DTYPES = (torch.float16, torch.bfloat16)
_logger = logging.getLogger(__name__)
_logged_choices: set = set()


# Looked up once at import (find_spec does not import fla): torch.compile cannot trace find_spec, and a call in
# a compiled block (layers/block.py) split its graph at every dispatch, ten times per MetaLA block.
_FLA_FOUND = importlib.util.find_spec("fla") is not None and importlib.util.find_spec("triton") is not None


def fla_available() -> bool:
    return _FLA_FOUND


def choose_backend(requested: str, tensor: torch.Tensor) -> str:
    """Resolve "auto" for this tensor; reject unknown names and impossible requests."""
    if requested not in BACKENDS:
        raise ValueError(f"unknown MetaLA backend {requested!r}; choose one of {', '.join(BACKENDS)}")
    if requested == "fla":
        if not tensor.is_cuda:
            raise ValueError(
                f"MetaLA backend 'fla' needs CUDA tensors; use 'auto' or 'chunked' on {tensor.device.type}"
            )
        if not fla_available():
            raise ValueError(
                "MetaLA backend 'fla' needs flash-linear-attention and triton: pip install 'neox-metala[gpu]'"
            )
    if requested == "fla" and tensor.dtype == torch.float32:
        _log_choice("fp32 inputs", "fla's TF32 dot products (~1e-3 relative error)", tensor, logging.WARNING)
    if requested != "auto":
        return requested
    if tensor.is_cuda and tensor.dtype in _FLA_DTYPES and fla_available():
        return "fla"
    return "chunked"


def _log_choice(op: str, kernel: str, tensor: torch.Tensor, level: int = logging.INFO) -> None:
    if torch.compiler.is_compiling():  # logged by the eager first call; a log call would split the graph
        return
    key = (op, kernel, tensor.device.type, tensor.dtype)
    if key not in _logged_choices:
        _logged_choices.add(key)
        _logger.log(level, "MetaLA %s runs on %s (%s, %s)", op, kernel, tensor.device.type, tensor.dtype)


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(..., heads * head_dim) -> (..., heads, head_dim), head h owning channels [h*d, (h+1)*d)."""
    if x.shape[-1] % heads:
        raise ValueError(f"width {x.shape[-1]} is not divisible by {heads} heads")
    return x.unflatten(-1, (heads, x.shape[-1] // heads))


@torch.compiler.disable  # fla's Triton autograd Functions run between compiled graphs (layers/block.py)
def _fla_gla(q, key, v, log_decay, scale, initial_state, output_final_state):
    from fla.ops.gla import chunk_gla, fused_recurrent_gla

    key = key.to(q.dtype)
    v = v.to(q.dtype)
    if initial_state is not None:
        initial_state = initial_state.float()
    if q.shape[1] == 1 and not torch.is_grad_enabled():
        return fused_recurrent_gla(
            q, key, v, gk=log_decay, scale=scale, initial_state=initial_state, output_final_state=output_final_state
        )
    return chunk_gla(
        q, key, v, log_decay, scale=scale, initial_state=initial_state, output_final_state=output_final_state
    )


def gla_recurrence(
    q,
    key,
    v,
    log_decay,
    *,
    scale=None,
    initial_state=None,
    output_final_state=False,
    backend="auto",
    chunk_size=DEFAULT_CHUNK_SIZE,
    document_starts=None,
    core_kernel=DEFAULT_OPTIONS.core_kernel,
    keep_core_states=DEFAULT_OPTIONS.keep_core_states,
    gate_logits=None,
    normalizer=DEFAULT_OPTIONS.decay_normalizer,
):
    """Gated linear attention with per-channel decay, the core of MetaLA.

    q, key, log_decay: [B, T, H, K]; v: [B, T, H, V]; initial_state: [B, H, K, V] (kept in fp32 or wider).
    scale defaults to K ** -0.5. document_starts: [B, T] bool, the state is emptied before those tokens (packed
    documents; no initial or final state then). core_kernel (MetaLAOptions.core_kernel): on the fla backend
    without carried state or packed documents, "metala" runs MetaLA's own kernels when given the gate logits
    ([B, T, H, K], log_decay and key must be decay_and_key(gate_logits, normalizer)): they form log_decay and the
    key from them in registers, reading q, gate_logits and v in place (views of the projection), and keep their
    per-chunk states for the backward if keep_core_states. Returns (output [B, T, H, V] in v's dtype, final state
    or None).

    Example:
        >>> o, state = gla_recurrence(q, key, v, log_decay, output_final_state=True)
    """
    check_gla_inputs(q, key, v, log_decay, initial_state)
    if document_starts is not None:
        check_document_starts(document_starts, q, initial_state is not None or output_final_state)
    if scale is None:
        scale = q.shape[-1] ** -0.5
    kernel = choose_backend(backend, q)
    _log_choice("recurrence", kernel, q)
    if kernel == "fla" and initial_state is None and not output_final_state:  # training and plain prefill
        if core_kernel == "metala" and document_starts is None and gate_logits is not None:
            _log_choice("training core", "MetaLA's own kernels", q)
            from .metala_core_op import metala_core

            output = metala_core(
                q, v.to(q.dtype), gate_logits.to(q.dtype), scale, normalizer, keep_states=keep_core_states
            )
            return output.to(v.dtype), None
        # said once, so that a user who packs documents knows why the run is not on the faster default core
        why = ""
        if core_kernel == "metala":
            why = (
                " (packed documents: MetaLA's own kernels take no document boundaries)"
                if document_starts is not None
                else " (no gate logits given: MetaLA's own kernels read them)"
            )
        _log_choice("training core", "fla's chunk_gla" + why, q)
        from .core_op import gla_core

        return gla_core(q, key.to(q.dtype), v.to(q.dtype), log_decay, scale, document_starts).to(v.dtype), None
    if kernel == "fla":
        output, state = _fla_gla(q, key, v, log_decay, scale, initial_state, output_final_state)
        return output.to(v.dtype), state
    if kernel == "reference":
        output, state = reference.recurrent_gla_reference(q, key, v, log_decay, scale, initial_state, document_starts)
        return output.to(v.dtype), (state if output_final_state else None)
    return chunked_gla(
        q,
        key,
        v,
        log_decay,
        scale,
        initial_state,
        output_final_state,
        chunk_size=chunk_size,
        document_starts=document_starts,
    )


def decay_and_key(gate_logits, normalizer=DEFAULT_OPTIONS.decay_normalizer):
    """log α = logsigmoid(logits)/τ and key = 1 − α, both in fp32 (or wider), key via −expm1 for accuracy.

    The one implementation of MetaLA's decay rule outside the reference: every path (ops.fused too) calls it."""
    log_decay = F.logsigmoid(gate_logits.to(torch.promote_types(gate_logits.dtype, torch.float32))) / normalizer
    return log_decay, -torch.expm1(log_decay)


def augment_norm_gate(recurrent_out, q, key, v, aug_balance, gate, eps=reference.HEAD_NORM_EPS):
    """Self-augmentation + per-head LayerNorm + SiLU gate, computed in fp32; returns gate's dtype. The one
    implementation outside the reference (ops.fused's epilogue calls it).

    aug_balance None leaves the self-augmentation out (the paper's "w/o selfaug" ablation).
    """
    wide = torch.promote_types(gate.dtype, torch.float32)
    augmented = recurrent_out.to(wide)
    if aug_balance is not None:
        heads, head_k_dim = q.shape[-2], q.shape[-1]
        if aug_balance.numel() != heads * head_k_dim:
            raise ValueError(
                f"aug_balance has {aug_balance.numel()} entries, expected heads * head_k_dim = {heads} * {head_k_dim}"
            )
        balance = aug_balance.to(wide).view(heads, head_k_dim)
        aug_weight = (q.to(wide) * key.to(wide) * balance).sum(-1, keepdim=True)  # (B, T, H, 1)
        augmented = augmented + torch.sigmoid(aug_weight * v.to(wide))
    normed = F.layer_norm(augmented, (augmented.shape[-1],), eps=eps)
    return (F.silu(gate.to(wide)) * normed).to(gate.dtype)


def token_mix(
    q,
    gate_logits,
    v,
    gate,
    aug_balance,
    *,
    initial_state=None,
    output_final_state=False,
    backend="auto",
    chunk_size=DEFAULT_CHUNK_SIZE,
    normalizer=DEFAULT_OPTIONS.decay_normalizer,
    eps=reference.HEAD_NORM_EPS,
    document_starts=None,
    core_kernel=DEFAULT_OPTIONS.core_kernel,
    keep_core_states=DEFAULT_OPTIONS.keep_core_states,
    gate_bias=None,
    epilogue_kernel=DEFAULT_OPTIONS.epilogue_kernel,
    seq_first_output=False,
):
    """MetaLA between the input projections and the output projection (spec §2.4–2.9), for local heads.

    q, gate_logits: [B, T, H, K]; v, gate: [B, T, H, V]; aug_balance: [H*K] or None; gate_bias: [H*V] (added to the
    gate) or None; document_starts: [B, T] bool or None (gla_recurrence). epilogue_kernel "triton": the epilogue on
    MetaLA's own kernels (ops/epilogue_op.py) on the fla backend without carried state, y laid out (T, B, H, V) in
    memory if seq_first_output (what the out projection reads). Returns (y [B, T, H, V], final state or None).
    """
    if gate_logits.shape != q.shape or gate.shape != v.shape:
        raise ValueError(
            f"gate_logits {tuple(gate_logits.shape)} must match q {tuple(q.shape)} and "
            f"gate {tuple(gate.shape)} must match v {tuple(v.shape)}"
        )
    log_decay, key = decay_and_key(gate_logits, normalizer)
    recurrent_out, state = gla_recurrence(
        q,
        key,
        v,
        log_decay,
        initial_state=initial_state,
        output_final_state=output_final_state,
        backend=backend,
        chunk_size=chunk_size,
        document_starts=document_starts,
        core_kernel=core_kernel,
        keep_core_states=keep_core_states,
        gate_logits=gate_logits,
        normalizer=normalizer,
    )
    own_epilogue = epilogue_kernel == "triton" and initial_state is None and not output_final_state
    if own_epilogue and choose_backend(backend, q) == "fla":
        _log_choice("epilogue", "MetaLA's own Triton kernels", q)
        args = (recurrent_out, q, gate_logits, v, gate, gate_bias, aug_balance, normalizer, eps, seq_first_output)
        return augment_norm_gate_op(*args), state
    if gate_bias is not None:
        gate = gate + gate_bias.view(gate.shape[-2:])
    return augment_norm_gate(recurrent_out, q, key, v, aug_balance, gate, eps), state


def metala_mix(
    projected,
    gate_bias,
    aug_balance,
    heads: int,
    options: MetaLAOptions = DEFAULT_OPTIONS,
    *,
    eps=reference.HEAD_NORM_EPS,
    seq_first=True,
    document_starts=None,
):
    """What a layer calls between its projections, for training and prefill without carried state.

    projected: [B, T, 3W] = [q | decay logits | v | gate] of `heads` heads (W = heads * head_v_dim; widths from
    `projection_widths`); gate_bias: [W]; aug_balance: [W/2] or None; document_starts: [B, T] bool or None (the
    recurrence restarts there: packed documents). Returns y [T, B, W] (seq_first) or [B, T, W].
    `options.fused_kernels` runs `ops.fused` on the fla backend (faster; opt-in until the GPU measures it against
    the default path, see config key metala_fused_kernels); else the core_kernel's core and epilogue_kernel's epilogue.
    """
    width = projected.shape[-1] // 3
    if projected.shape[-1] % 3 or width % (2 * heads):
        raise ValueError(
            f"projected width {projected.shape[-1]} must be 3 * heads ({heads}) * head_v_dim with an even head_v_dim"
        )
    kernel = choose_backend(options.backend, projected)
    if kernel == "fla" and options.fused_kernels:
        _log_choice("metala_mix", "fla + fused epilogue", projected)
        from .fused import fused_token_mix

        return fused_token_mix(
            projected,
            gate_bias,
            aug_balance,
            heads,
            normalizer=options.decay_normalizer,
            eps=eps,
            seq_first=seq_first,
            document_starts=document_starts,
        )
    own_kernels = options.core_kernel == "metala" and options.epilogue_kernel == "triton"
    if kernel == "fla" and own_kernels and document_starts is None:
        _log_choice("metala_mix", "MetaLA's own core and epilogue kernels, one op", projected)
        from .mixer_op import metala_mixer

        mixed = metala_mixer(
            projected, gate_bias, aug_balance, heads, options.decay_normalizer, eps, seq_first, options.keep_core_states
        ).flatten(-2)  # (B, T, W), laid out (T, B, W) if seq_first
        return mixed.transpose(0, 1) if seq_first else mixed
    q, decay_logits, v, gate = projected.split(projection_widths(width), dim=-1)
    mixed, _ = token_mix(
        split_heads(q, heads),
        split_heads(decay_logits, heads),
        split_heads(v, heads),
        split_heads(gate, heads),
        aug_balance,
        gate_bias=gate_bias,
        backend=kernel,
        chunk_size=options.chunk_size,
        normalizer=options.decay_normalizer,
        eps=eps,
        document_starts=document_starts,
        core_kernel=options.core_kernel,
        keep_core_states=options.keep_core_states,
        epilogue_kernel=options.epilogue_kernel,
        seq_first_output=seq_first,
    )
    mixed = mixed.flatten(-2)  # (B, T, W)
    return mixed.transpose(0, 1) if seq_first else mixed


def short_conv(
    x,
    weight,
    conv_state=None,
    output_final_state=False,
    backend="auto",
    document_starts=None,
    conv_kernel=DEFAULT_OPTIONS.conv_kernel,
):
    """SiLU(causal depthwise conv): x [B, T, C], weight [C, W], conv_state [B, C, W] -> (y, new state or None).

    document_starts [B, T] bool: each document's window starts empty (packed documents; no conv state then).
    conv_kernel (MetaLAOptions.conv_kernel): in a compiled block on the fla backend without state or packed
    documents, "triton" runs MetaLA's own kernels (ops/short_conv_op.py) instead of the shifted sum."""
    check_conv_inputs(x, weight, conv_state)
    kernel = choose_backend(backend, x)
    if document_starts is not None:
        check_document_starts(document_starts, x, conv_state is not None or output_final_state)
        if kernel == "reference":
            return reference.short_conv_reference(x, weight, document_starts=document_starts)[0], None
        # fla's causal_conv1d has a varlen form too, but the masked shifted sum is exact with fixed shapes, is
        # what compiled blocks run anyway, and is the form the CPU tests check
        _log_choice("short_conv", "the masked shifted sum (packed documents)", x)
        return short_conv_shifted(x, weight, document_starts), None
    _log_choice("short_conv", kernel, x)
    if kernel == "fla" and torch.compiler.is_compiling() and conv_state is None and not output_final_state:
        # Inside a compiled block: fla's kernel is an autograd Function that would end the graph; the
        # shifted-sum form fuses with its neighbours into one kernel each way.
        if conv_kernel == "triton":
            from . import short_conv_op

            return short_conv_op.short_conv_silu(x, weight), None
        return short_conv_shifted(x, weight), None
    if kernel == "fla":
        return short_conv_fla(x, weight, conv_state, output_final_state)
    if kernel == "reference":
        y, state = reference.short_conv_reference(x, weight, conv_state)
        return y, (state if output_final_state else None)
    return short_conv_torch(x, weight, conv_state, output_final_state)

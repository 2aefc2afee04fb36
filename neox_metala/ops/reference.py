"""The MetaLA token-mixing math as a step-by-step recurrence: the spec in code.

Imports only torch, runs in any dtype (tests use float64), and is never fast. Every other path in
`neox_metala.ops` (chunked torch, fla kernels, fused kernels) is tested against these functions.
Equations and their sources: shared/design/metala-spec.md §2.

Shapes (time-first inside a sequence, as fla >= 0.6 and the rest of this package use):
    q, key, log_decay : (batch, seq, heads, head_k_dim)
    v, gate, output   : (batch, seq, heads, head_v_dim)
    state             : (batch, heads, head_k_dim, head_v_dim)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOG_DECAY_NORMALIZER = 16.0  # τ in the paper: α = sigmoid(logit) ** (1/16)
HEAD_NORM_EPS = 1e-5


def recurrent_gla_reference(q, key, v, log_decay, scale, initial_state=None, document_starts=None):
    """S_t = diag(α_t) S_{t-1} + key_tᵀ v_t ;  o_t = scale · q_t S_t  (the current token sees itself).

    document_starts (B,T) bool, for packed documents (not in the official code): S_{t-1} is emptied before each
    token where it is True, so no document sees the one before it.
    Returns (output (B,T,H,dv), final_state (B,H,dk,dv)). Runs in the dtype of its inputs.
    """
    batch, seq, heads, head_k_dim = q.shape
    head_v_dim = v.shape[-1]
    state = q.new_zeros(batch, heads, head_k_dim, head_v_dim)
    if initial_state is not None:
        state = state + initial_state.to(q.dtype)
    outputs = []
    for t in range(seq):
        if document_starts is not None:
            state = state * (~document_starts[:, t]).to(state.dtype)[:, None, None, None]
        decay = log_decay[:, t].exp()  # (batch, heads, head_k_dim)
        state = decay[..., None] * state + key[:, t, :, :, None] * v[:, t, :, None, :]
        outputs.append(scale * torch.einsum("bhk,bhkv->bhv", q[:, t], state))
    return torch.stack(outputs, dim=1), state


def decay_and_key_reference(gate_logits, normalizer=LOG_DECAY_NORMALIZER):
    """log α = logsigmoid(logits)/τ and key = 1 − α (MetaLA has no key projection).

    key is computed as −expm1(log α): the official `1 − exp(log α)` loses digits when α is close to 1.
    """
    log_decay = F.logsigmoid(gate_logits) / normalizer
    return log_decay, -torch.expm1(log_decay)


def augment_norm_gate_reference(recurrent_out, q, key, v, aug_balance, gate, eps=HEAD_NORM_EPS):
    """Self-augmentation, per-head LayerNorm (no affine) and SiLU output gate, exactly as the official code:

    o ← o + sigmoid((Σ_i q_i (1−α_i) w_i) · v)       (unscaled q, sigmoid elementwise over dv)
    y  = SiLU(gate) ⊙ LayerNorm_dv(o)
    """
    heads, head_k_dim = q.shape[-2], q.shape[-1]
    aug_weight = (q * key * aug_balance.view(heads, head_k_dim)).sum(-1, keepdim=True)  # (B,T,H,1)
    augmented = recurrent_out + torch.sigmoid(aug_weight * v)
    normed = F.layer_norm(augmented, (augmented.shape[-1],), eps=eps)
    return F.silu(gate) * normed


def short_conv_reference(x, weight, conv_state=None, document_starts=None):
    """Causal depthwise convolution with SiLU, one time step at a time.

    x: (batch, seq, channels); weight: (channels, kernel_size); conv_state: (batch, channels, kernel_size), the
    last kernel_size inputs before this chunk, oldest first (zeros at a sequence start; the oldest column is
    not used, the layout is fla's and the official HF cache's). document_starts (batch, seq) bool: the window is
    emptied before those tokens (packed documents). Returns (y, new_conv_state).
    """
    batch, seq, channels = x.shape
    kernel_size = weight.shape[-1]
    window = x.new_zeros(batch, channels, kernel_size)
    if conv_state is not None:
        window = window + conv_state.to(x.dtype)
    outputs = []
    for t in range(seq):
        if document_starts is not None:
            window = window * (~document_starts[:, t]).to(window.dtype)[:, None, None]
        window = torch.cat([window[..., 1:], x[:, t, :, None]], dim=-1)  # (batch, channels, kernel_size)
        outputs.append(F.silu((window * weight).sum(-1)))
    return torch.stack(outputs, dim=1), window


def token_mix_reference(
    q, gate_logits, v, gate, aug_balance, initial_state=None, normalizer=LOG_DECAY_NORMALIZER, eps=HEAD_NORM_EPS
):
    """Everything between the input projections and the output projection, for one rank's heads.

    q, gate_logits: (B,T,H,dk); v, gate: (B,T,H,dv); aug_balance: (H*dk,). Returns (y (B,T,H,dv), state).
    """
    log_decay, key = decay_and_key_reference(gate_logits, normalizer)
    scale = q.shape[-1] ** -0.5  # fla's default, which the official code relies on (spec §2.6)
    recurrent_out, state = recurrent_gla_reference(q, key, v, log_decay, scale, initial_state)
    return augment_norm_gate_reference(recurrent_out, q, key, v, aug_balance, gate, eps), state

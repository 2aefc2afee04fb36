"""Gated linear attention in chunked parallel form, pure PyTorch (CPU, any GPU, autograd through torch ops).

Within a chunk of C tokens, with A_t = Σ_{j≤t} log α_j (per channel, restarted at every chunk):

    o_t = scale · [ Σ_{s≤t in chunk} (Σ_i q_t[i] k_s[i] exp(A_t[i] − A_s[i])) v_s  +  (q_t ⊙ exp(A_t)) S_prev ]
    S   = exp(A_C) ⊙ S_prev + Σ_s (k_s ⊙ exp(A_C − A_s))ᵀ v_s

Every exponent is a log-decay *difference* over s ≤ t, hence ≤ 0: no overflow for strong decay or long
sequences (the factorised q·exp(A) / k·exp(−A) form overflows float32 once a chunk's total decay passes ~88).
The pairwise form costs C×C×dk memory per chunk, which is why the GPU uses fla's kernels instead.

Packed documents (`document_starts`): the state is emptied before a document's first token, i.e. the decay
across a boundary is zero. Exactly, with masks rather than −inf decays (whose cumulative sums give nan): a pair
(t, s) counts only within one document, q_t reads S_prev only if no document starts in the chunk up to t, only
the chunk's last document writes into the next state, and S_prev is carried on only if no document starts in
the chunk.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _to_chunks(x, padded_seq, chunk_size, dtype):
    """(B, T, H, d) -> (B, H, num_chunks, C, d) in `dtype`, zero-padded at the end."""
    batch, seq, heads, dim = x.shape
    x = F.pad(x.to(dtype), (0, 0, 0, 0, 0, padded_seq - seq))
    return x.view(batch, padded_seq // chunk_size, chunk_size, heads, dim).permute(0, 3, 1, 2, 4)


def _document_in_chunk(document_starts, padded_seq, chunk_size):
    """(B, T) bool document starts -> (B, N, C): each token's document counted from its chunk's start (0: the
    document that was running when the chunk began)."""
    starts = F.pad(document_starts.long(), (0, padded_seq - document_starts.shape[1]))
    return starts.view(starts.shape[0], padded_seq // chunk_size, chunk_size).cumsum(-1)


def chunked_gla(
    q, key, v, log_decay, scale, initial_state=None, output_final_state=False, *, chunk_size, document_starts=None
):
    """Chunked GLA: same contract as `reference.recurrent_gla_reference`. `chunk_size` has no default here: the
    callers pass the configured one (ops.MetaLAOptions; this file also ships alone with an HF export).

    Accumulates in float32 (float64 inputs stay float64). Returns (output in v's dtype, final state in the
    accumulation dtype, or None if not asked for).
    """
    batch, seq, heads, head_k_dim = q.shape
    head_v_dim = v.shape[-1]
    compute_dtype = torch.promote_types(q.dtype, torch.float32)
    padded_seq = -(-seq // chunk_size) * chunk_size
    # Padding is harmless: key = v = 0 adds nothing and log α = 0 keeps the state.
    q_c, key_c, v_c, log_decay_c = (
        _to_chunks(t, padded_seq, chunk_size, compute_dtype) for t in (q, key, v, log_decay)
    )
    cum_decay = log_decay_c.cumsum(dim=-2)  # (B, H, N, C, dk): A_t within each chunk

    causal = torch.ones(chunk_size, chunk_size, dtype=torch.bool, device=q.device).tril()
    pairs = causal[..., None]  # (C_t, C_s, 1): which s each t reads
    if document_starts is not None:
        document = _document_in_chunk(document_starts, padded_seq, chunk_size)  # (B, N, C)
        same_document = document[..., :, None] == document[..., None, :]  # (B, N, C_t, C_s)
        pairs = (causal & same_document)[:, None, ..., None]  # (B, 1, N, C_t, C_s, 1)
    pair_log_decay = cum_decay[..., :, None, :] - cum_decay[..., None, :, :]  # (B, H, N, C_t, C_s, dk)
    pair_decay = pair_log_decay.masked_fill(~pairs, float("-inf")).exp()
    scores = torch.einsum("bhntk,bhntsk,bhnsk->bhnts", q_c, pair_decay, key_c)  # (B, H, N, C_t, C_s)
    intra = scores @ v_c  # (B, H, N, C, dv)

    q_from_start = q_c * cum_decay.exp()  # decay from the chunk start to t, ≤ 1
    key_to_end = key_c * (cum_decay[..., -1:, :] - cum_decay).exp()  # decay from s to the chunk end, ≤ 1
    chunk_decay = cum_decay[..., -1, :].exp()  # (B, H, N, dk)
    if document_starts is not None:
        as_mask = lambda condition: condition[:, None, ..., None].to(compute_dtype)  # noqa: E731  (B, 1, N, ·, 1)
        q_from_start = q_from_start * as_mask(document == 0)  # no document started since the chunk began
        key_to_end = key_to_end * as_mask(document == document[..., -1:])  # the chunk's last document
        chunk_decay = chunk_decay * as_mask(document[..., -1] == 0)  # no document started in the chunk

    state = q_c.new_zeros(batch, heads, head_k_dim, head_v_dim)
    if initial_state is not None:
        state = state + initial_state.to(compute_dtype)
    outputs = []
    for n in range(padded_seq // chunk_size):
        outputs.append(intra[:, :, n] + q_from_start[:, :, n] @ state)
        state = chunk_decay[:, :, n, :, None] * state + key_to_end[:, :, n].transpose(-1, -2) @ v_c[:, :, n]
    output = scale * torch.stack(outputs, dim=2)  # (B, H, N, C, dv)
    output = output.permute(0, 2, 3, 1, 4).reshape(batch, padded_seq, heads, head_v_dim)[:, :seq]
    return output.to(v.dtype), (state if output_final_state else None)

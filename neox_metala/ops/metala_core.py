"""MetaLA's core, the gated linear recurrence whose key is 1 - decay, in the chunk form of its Triton kernels
(ops/metala_core_triton.py): the same algorithm in PyTorch, forward and explicit backward. It is the kernels'
specification, their CPU fallback, and checked in fp64 against the step-by-step recurrence (ops/reference.py).

Per (batch, head), channel c, from a zero state, with g_t = log α_t ≤ 0 (fp32) and the key k_t = 1 - α_t = -expm1(g_t)
formed from g (MetaLA has no key input, so the kernels never read one):

    S_t = diag(α_t) S_{t-1} + k_tᵀ v_t ;  o_t = scale · q_t S_t

In chunks of C tokens, with G the inclusive cumsum of g restarted at every chunk and h_n the state entering chunk n:

    o   = scale · [ (q ⊙ e^G) h_n + (A ⊙ causal) v ],   A_ts = Σ_c q_tc k_sc e^(G_tc − G_sc)
    h_n+1 = e^G_last ⊙ h_n + (k ⊙ e^(G_last − G))ᵀ v

The scores A (the costly part) take one of two forms per chunk:
  * factorised (one C×C×K matrix product): A = (q ⊙ e^(G − r)) (k ⊙ e^(r − G))ᵀ with the reference r = G_last / 2 per
    channel, so every exponent lies within ±R/2 where R = max_c(−G_last) is the chunk's total log decay. Taken when
    R ≤ FACTORISED_RANGE: factors within e^±30 are exact in fp32 and bf16 (both reach e^±88), and the pairs the
    causal mask discards (t < s, true value up to e^R) stay below e^60, far from overflow.
  * exact: every exponent ≤ 0, for any decay. Chunks of strong decay (R > 60: mean per-token log decay below −0.94,
    i.e. gate logits around −15 and lower). Here e^(G_tc − G_sc) is formed for each pair, one einsum. The kernels
    take it by sub-chunks of SUB_CHUNK_SIZE rows (fla's chunk_gla's split): sub-chunk i's rows against the columns
    before it are factorised about r_i, the G of the row just before sub-chunk i (G_t ≤ r_i ≤ G_s, so both factors
    are at most 1: one product), and only the pairs within a sub-chunk are per element. A per-element loop over
    all C columns made the kernels 5.5× slower than fla where every chunk took it; in PyTorch the per-element form
    is one vectorised op, so the specification keeps it (both are exact; they differ by rounding only).
MetaLA's decay, logsigmoid(logits) / 16, is mild by design (about −0.04 per token at logit 0), so the factorised
form is the usual one.

Gradients (dq, dv, d log_decay; with dA = scale · (do vᵀ ⊙ causal) and dh_n+1 the gradient of the state leaving
chunk n, from a reverse scan dh_n = e^G_last ⊙ dh_n+1 + scale (q ⊙ e^G)ᵀ do):
    dv = scale (A ⊙ causal)ᵀ do + (k ⊙ e^(G_last − G)) dh_n+1
    dq = scale e^G ⊙ (do h_nᵀ) + [Σ_s dA_ts k_s e^(G_t − G_s)]
    dk = e^(G_last − G) ⊙ (v dh_n+1ᵀ) + [Σ_t dA_ts q_t e^(G_t − G_s)]         (the key's gradient, an intermediate)
    dG = q dq − k dk, plus at the chunk's last token e^G_last ⊙ rowsum(h_n ⊙ dh_n+1) + Σ_s k ⊙ dk_inter
    d log_decay = reverse cumsum of dG within the chunk − e^g ⊙ dk              (the last term: the key's path)
The bracketed intra-chunk sums take the same factorised or exact form as A.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FACTORISED_RANGE = 60.0
"""A chunk's scores are factorised when its total log decay max_c(−G_last) is at most this (module docstring)."""

CHUNK_SIZE = 64

SUB_CHUNK_SIZE = 16
"""Rows of the sub-chunks by which the kernels take the scores of a chunk of strong decay (module docstring)."""


def key_from_log_decay(log_decay: torch.Tensor) -> torch.Tensor:
    return -torch.expm1(log_decay)


def _to_chunks(x, chunk_size, dtype):
    """(B, T, H, d) -> (B, H, N, C, d) in `dtype`, zero-padded at the end (g = 0, k = 0, v = 0: no effect)."""
    batch, seq, heads, dim = x.shape
    padded = -(-seq // chunk_size) * chunk_size
    x = F.pad(x.to(dtype), (0, 0, 0, 0, 0, padded - seq))
    return x.view(batch, padded // chunk_size, chunk_size, heads, dim).permute(0, 3, 1, 2, 4)


def _from_chunks(x, seq):
    """(B, H, N, C, d) -> (B, T, H, d)."""
    batch, heads, chunks, chunk_size, dim = x.shape
    return x.permute(0, 2, 3, 1, 4).reshape(batch, chunks * chunk_size, heads, dim)[:, :seq]


def factorised_chunks(cum_decay: torch.Tensor) -> torch.Tensor:
    """(B, H, N, C, K) in-chunk cumsum of log decay -> (B, H, N) bool: the chunks whose scores are factorised."""
    return (-cum_decay[..., -1, :]).amax(-1) <= FACTORISED_RANGE


def _causal(chunk_size, device):
    return torch.ones(chunk_size, chunk_size, dtype=torch.bool, device=device).tril()


def _pair_decay(cum_decay):
    """(..., C, K) -> (..., C_t, C_s, K): e^(G_t − G_s) where s ≤ t, else 0 (every exponent kept ≤ 0)."""
    diff = cum_decay[..., :, None, :] - cum_decay[..., None, :, :]
    return diff.clamp_max(0).exp() * _causal(cum_decay.shape[-2], cum_decay.device)[:, :, None]


def _factors(cum_decay):
    """e^(G − r) and e^(r − G), r = G_last / 2. Exponents are clamped to ±FACTORISED_RANGE/2, which changes
    nothing in a factorised chunk and keeps the others (replaced by the exact form) finite."""
    half = FACTORISED_RANGE / 2
    offset = (cum_decay - cum_decay[..., -1:, :] / 2).clamp(-half, half)  # (B, H, N, C, K): G − r
    return offset.exp(), (-offset).exp()


def _select(factorised, fast, exact_of):
    """Per chunk: the factorised result where allowed, `exact_of(index)` elsewhere (computed only there)."""
    slow = ~factorised
    if not slow.any():
        return fast
    out = fast.clone()
    out[slow] = exact_of(slow)
    return out


def _scores(q, key, cum_decay, factorised):
    """(B, H, N, C, C) intra-chunk scores A ⊙ causal (no scale)."""
    to_ref, from_ref = _factors(cum_decay)
    fast = ((q * to_ref) @ (key * from_ref).transpose(-1, -2)).tril()
    return _select(
        factorised,
        fast,
        lambda idx: torch.einsum("ntk,ntsk,nsk->nts", q[idx], _pair_decay(cum_decay[idx]), key[idx]),
    )


def _intra_grads(d_scores, q, key, cum_decay, factorised):
    """dq_intra_t = Σ_s dA_ts k_s e^(G_t − G_s) and dk_intra_s = Σ_t dA_ts q_t e^(G_t − G_s), dA causal-masked."""
    to_ref, from_ref = _factors(cum_decay)
    dq = _select(
        factorised,
        to_ref * (d_scores @ (key * from_ref)),
        lambda idx: torch.einsum("nts,ntsk,nsk->ntk", d_scores[idx], _pair_decay(cum_decay[idx]), key[idx]),
    )
    dk = _select(
        factorised,
        from_ref * (d_scores.transpose(-1, -2) @ (q * to_ref)),
        lambda idx: torch.einsum("nts,ntsk,ntk->nsk", d_scores[idx], _pair_decay(cum_decay[idx]), q[idx]),
    )
    return dq, dk


def _chunk_terms(q, log_decay, chunk_size):
    """Chunked q, key, G and the decays every pass needs, in the accumulation dtype (fp32, or fp64 for fp64)."""
    dtype = torch.promote_types(q.dtype, torch.float32)
    q_c, log_decay_c = _to_chunks(q, chunk_size, dtype), _to_chunks(log_decay, chunk_size, dtype)
    cum_decay = log_decay_c.cumsum(-2)  # (B, H, N, C, K): G
    key_c = key_from_log_decay(log_decay_c)
    last = cum_decay[..., -1:, :]  # (B, H, N, 1, K): G_last
    return q_c, log_decay_c, key_c, cum_decay, (last - cum_decay).exp(), last.exp()


def _states(key_to_end, chunk_decay, v_c):
    """(B, H, N, K, V): h_n, the state entering each chunk, from a zero state."""
    state = v_c.new_zeros(*key_to_end.shape[:2], key_to_end.shape[-1], v_c.shape[-1])
    states = []
    for n in range(v_c.shape[2]):
        states.append(state)
        state = chunk_decay[:, :, n].transpose(-1, -2) * state + key_to_end[:, :, n].transpose(-1, -2) @ v_c[:, :, n]
    return torch.stack(states, 2)


def _state_grads(q_from_start, chunk_decay, d_out, scale):
    """(B, H, N, K, V): dh_n+1, the gradient of the state leaving each chunk (zero after the last)."""
    grad = d_out.new_zeros(*q_from_start.shape[:2], q_from_start.shape[-1], d_out.shape[-1])
    grads = []
    for n in reversed(range(d_out.shape[2])):
        grads.append(grad)
        grad = (
            chunk_decay[:, :, n].transpose(-1, -2) * grad
            + scale * q_from_start[:, :, n].transpose(-1, -2) @ d_out[:, :, n]
        )
    return torch.stack(grads[::-1], 2)


def chunk_states(q, log_decay, v, chunk_size=CHUNK_SIZE):
    """(B, H, N, K, V) in q's dtype: the state entering each chunk (what the Triton forward can keep)."""
    q_c, _, key_c, _, decay_to_end, chunk_decay = _chunk_terms(q, log_decay, chunk_size)
    return _states(key_c * decay_to_end, chunk_decay, _to_chunks(v, chunk_size, q_c.dtype)).to(q.dtype)


def metala_core_forward(q, log_decay, v, scale, chunk_size=CHUNK_SIZE):
    """q, log_decay (B, T, H, K), v (B, T, H, V) -> o (B, T, H, V) in v's dtype; see the module docstring."""
    q_c, _, key_c, cum_decay, decay_to_end, chunk_decay = _chunk_terms(q, log_decay, chunk_size)
    v_c = _to_chunks(v, chunk_size, q_c.dtype)
    states = _states(key_c * decay_to_end, chunk_decay, v_c)
    scores = _scores(q_c, key_c, cum_decay, factorised_chunks(cum_decay))
    out = scale * ((q_c * cum_decay.exp()) @ states + scores @ v_c)
    return _from_chunks(out, q.shape[1]).to(v.dtype)


def metala_core_backward(q, log_decay, v, scale, d_output, chunk_size=CHUNK_SIZE):
    """-> (dq, d_log_decay, dv) of `metala_core_forward` for the cotangent d_output, by the formulas above."""
    q_c, log_decay_c, key_c, cum_decay, decay_to_end, chunk_decay = _chunk_terms(q, log_decay, chunk_size)
    key_to_end = key_c * decay_to_end
    v_c, d_out = (_to_chunks(t, chunk_size, q_c.dtype) for t in (v, d_output))
    factorised = factorised_chunks(cum_decay)
    q_from_start = q_c * cum_decay.exp()
    states = _states(key_to_end, chunk_decay, v_c)  # (B, H, N, K, V): h_n
    state_grads = _state_grads(q_from_start, chunk_decay, d_out, scale)  # (B, H, N, K, V): dh_n+1
    scores = _scores(q_c, key_c, cum_decay, factorised)
    d_scores = scale * (d_out @ v_c.transpose(-1, -2)).tril()  # (B, H, N, C, C)

    dv = scale * scores.transpose(-1, -2) @ d_out + key_to_end @ state_grads
    dq_intra, dk_intra = _intra_grads(d_scores, q_c, key_c, cum_decay, factorised)
    dq = scale * cum_decay.exp() * (d_out @ states.transpose(-1, -2)) + dq_intra
    dk_inter = decay_to_end * (v_c @ state_grads.transpose(-1, -2))
    dk = dk_inter + dk_intra
    d_cum = q_c * dq - key_c * dk  # (B, H, N, C, K): dG
    d_cum[..., -1, :] += chunk_decay[..., 0, :] * (states * state_grads).sum(-1) + (key_c * dk_inter).sum(-2)
    d_log_decay = d_cum.flip(-2).cumsum(-2).flip(-2) - log_decay_c.exp() * dk
    seq = q.shape[1]
    return (
        _from_chunks(dq, seq).to(q.dtype),
        _from_chunks(d_log_decay, seq).to(log_decay.dtype),
        _from_chunks(dv, seq).to(v.dtype),
    )


class MetaLACore(torch.autograd.Function):
    """The chunk form with its explicit backward, for autograd (CPU tests; the custom op uses the same two)."""

    @staticmethod
    def forward(ctx, q, log_decay, v, scale, chunk_size=CHUNK_SIZE):
        ctx.save_for_backward(q, log_decay, v)
        ctx.scale, ctx.chunk_size = scale, chunk_size
        return metala_core_forward(q, log_decay, v, scale, chunk_size)

    @staticmethod
    def backward(ctx, d_output):
        q, log_decay, v = ctx.saved_tensors
        dq, d_log_decay, dv = metala_core_backward(q, log_decay, v, ctx.scale, d_output, ctx.chunk_size)
        return dq, d_log_decay, dv, None, None


def metala_core_chunked(q, log_decay, v, scale, chunk_size=CHUNK_SIZE):
    """o = MetaLA core(q, log_decay, v) from a zero state, differentiable through the explicit backward."""
    return MetaLACore.apply(q, log_decay, v, scale, chunk_size)

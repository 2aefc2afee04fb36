"""The draws of MetaLA's own core tests (test_metala_core_cpu.py, test_metala_core_triton.py): one definition of
which gate logits put a chunk on the factorised or the exact (sub-chunk) form."""

import torch

from neox_metala.ops import reference

F64 = torch.float64
# gate logit shifts: log decay = logsigmoid(logit) / 16 ≈ −12.5 per token at −200, −1.5 at −24, −50 at −800
STRONG, MODERATE, HUGE = -200.0, -24.0, -800.0
OPEN = 30.0  # logsigmoid(30) ≈ −9e-14: 1 + e^−30 rounds to 1 in fp32 (fp64 keeps 3 of its digits)


def draw(batch, seq, heads, head_k_dim, head_v_dim, decay, seed=0):
    """q, log_decay = logsigmoid(logits)/16, v of `draw_logits`."""
    q, logits, v = draw_logits(batch, seq, heads, head_k_dim, head_v_dim, decay, seed)
    log_decay, _ = reference.decay_and_key_reference(logits)
    return q, log_decay, v


def draw_logits(batch, seq, heads, head_k_dim, head_v_dim, decay, seed=0):
    """q, gate logits, v; `decay` picks the gate logits around N(0, 3²) ("mild": factorised) shifted by:
    * "strong": STRONG everywhere (every chunk exact; pairs more than a few tokens apart vanish),
    * "mixed": STRONG in the second chunk and one channel only (one sequence holds both forms),
    * "moderate": MODERATE everywhere (every chunk exact, total ≈ 96, yet the pairs across sub-chunks matter),
    * "graded": none, MODERATE, HUGE channel by channel in every chunk (exact chunks holding mild channels, whose
      pairs span the whole chunk, beside channels where only pairs within a token survive),
    * "open": +OPEN everywhere (log decay ≈ −e^−logit / 16 ≈ −1e-14: the keys exist only through logsigmoid's
      and expm1's accuracy at large logits, which decide the whole output),
    * "open-shut": +OPEN and −OPEN channel by channel (keys ≈ 1e-14 beside keys ≈ 1, log decay −1.9 per token)."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, seq, heads, head_k_dim, dtype=F64, generator=gen) * 3
    if decay == "strong":
        logits = logits + STRONG
    elif decay == "mixed":
        logits[:, 64:128, :, 1] += STRONG
    elif decay == "moderate":
        logits = logits + MODERATE
    elif decay == "graded":
        logits = logits + torch.tensor([0.0, MODERATE, HUGE], dtype=F64).repeat(head_k_dim)[:head_k_dim]
    elif decay == "open":
        logits = logits + OPEN
    elif decay == "open-shut":
        logits = logits + torch.tensor([OPEN, -OPEN], dtype=F64).repeat(head_k_dim)[:head_k_dim]
    q = torch.randn(batch, seq, heads, head_k_dim, dtype=F64, generator=gen)
    v = torch.randn(batch, seq, heads, head_v_dim, dtype=F64, generator=gen)
    return q, logits, v

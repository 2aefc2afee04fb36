"""The draws of MetaLA's own core tests (test_metala_core_cpu.py, test_metala_core_triton.py): one definition of
which gate logits put a chunk on the factorised or the exact form."""

import torch

from neox_metala.ops import reference

F64 = torch.float64


def draw(batch, seq, heads, head_k_dim, head_v_dim, decay, seed=0):
    """q, log_decay = logsigmoid(logits)/16, v; `decay` picks the gate logits: "mild" (N(0, 3²), factorised),
    "strong" (about −200: log decay about −12.5 per token, exact form), "mixed" (strong in the second chunk only,
    and in one channel only, so one sequence holds both forms)."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, seq, heads, head_k_dim, dtype=F64, generator=gen) * 3
    if decay == "strong":
        logits = logits - 200
    elif decay == "mixed":
        logits[:, 64:128, :, 1] -= 200
    q = torch.randn(batch, seq, heads, head_k_dim, dtype=F64, generator=gen)
    v = torch.randn(batch, seq, heads, head_v_dim, dtype=F64, generator=gen)
    log_decay, _ = reference.decay_and_key_reference(logits)
    return q, log_decay, v

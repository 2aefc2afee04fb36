"""Decode state of one block, carried between calls so that prefill + one-token steps equal the full forward.

MetaLA layers keep a constant-size state (spec §5.3): the last `kernel` pre-convolution inputs and the recurrent
state S. Attention layers keep the usual key/value cache, which grows with the sequence. An empty `LayerCache`
means "sequence start"; each mixer fills the fields it owns and replaces (never mutates) the tensors, so a cache
can be copied cheaply (`fork`) to branch a sequence, e.g. to score several continuations of one context.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch


@dataclass
class LayerCache:
    conv_state: torch.Tensor | None = None  # (batch, hidden, kernel): last inputs of the short conv, oldest first
    recurrent_state: torch.Tensor | None = None  # (batch, heads / tp, head_k_dim, head_v_dim), fp32 or wider
    keys: torch.Tensor | None = None  # (batch, heads / tp, seen, head_dim), RoPE already applied
    values: torch.Tensor | None = None  # (batch, heads / tp, seen, head_dim)
    key_mask: torch.Tensor | None = None  # (batch, seen) bool, False at padding; None: nothing padded so far
    seen: int = 0  # tokens consumed so far (pads included): the position of the next token

    def fork(self) -> LayerCache:
        """A copy that shares the current tensors; the mixers replace tensors, so the copies evolve separately."""
        return replace(self)

    def select(self, index: torch.Tensor) -> LayerCache:
        """The cache of the sequences `index` (batch dimension), e.g. to repeat a context for several choices."""
        picked = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in picked.items():
            if isinstance(value, torch.Tensor):
                picked[name] = value.index_select(0, index.to(value.device))
        return LayerCache(**picked)


def new_cache(num_layers: int) -> list[LayerCache]:
    """One empty cache per block, for a model of `num_layers` blocks."""
    return [LayerCache() for _ in range(num_layers)]

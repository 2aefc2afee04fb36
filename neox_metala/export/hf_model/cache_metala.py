"""Decode state of the exported MetaLA model (written beside modeling_metala.py into every export)."""

from __future__ import annotations

import torch


class LayerState:
    """One layer's decode state: conv history and recurrent state (MetaLA), or keys/values (attention)."""

    def __init__(self):
        self.conv_state = self.recurrent_state = self.keys = self.values = self.key_mask = None
        self.seen = 0

    def select(self, index):
        picked = LayerState()
        for name, value in vars(self).items():
            setattr(picked, name, value.index_select(0, index) if isinstance(value, torch.Tensor) else value)
        return picked


class MetaLACache:
    """Every layer's `LayerState`. MetaLA layers: constant size; attention layers: grows with the sequence."""

    def __init__(self, num_layers: int):
        self.layers = [LayerState() for _ in range(num_layers)]

    @property
    def seen(self) -> int:
        return self.layers[0].seen

    def select(self, index: torch.Tensor) -> MetaLACache:
        picked = MetaLACache(0)
        picked.layers = [layer.select(index) for layer in self.layers]
        return picked

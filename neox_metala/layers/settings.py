"""The few numbers a block needs, separated from the run's whole configuration."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..ops.options import MetaLAOptions
from ..shape import default_intermediate_size


@dataclass(frozen=True)
class BlockSettings:
    """Built from the config by `training.engine.block_settings`; tests build it directly. Defaults are the config's
    (NeoX's): tests/config/test_keys_are_read.py checks that they agree."""

    hidden_size: int
    num_attention_heads: int
    num_layers: int
    intermediate_size: int | None = None  # None: NeoX's LLaMA rule, 256 * ceil(int(8 * hidden / 3) / 256)
    norm: str = "layernorm"  # "layernorm", "rmsnorm" (learned scale), "simple_rmsnorm" (no parameters)
    norm_eps: float = 1e-5
    hidden_dropout: float = 0.0
    init_method: str = "normal"
    output_layer_init_method: str = "scaled_normal"
    init_method_std: float = 0.02
    seed: int = 1234
    params_dtype: torch.dtype = torch.float32
    checkpoint_activations: bool = False
    metala: MetaLAOptions = MetaLAOptions()  # the MetaLA token mixer (spec §2), as the config's metala_* keys
    # Transformer++ attention baseline
    rotary_pct: float = 1.0  # 0: no RoPE (pos_emb: none)
    rotary_emb_base: int = 10000
    attention_dropout: float = 0.0

    @property
    def mlp_width(self) -> int:
        return self.intermediate_size or default_intermediate_size(self.hidden_size)


def check_head_split(hidden_size: int, heads: int, tensor_parallel: int, min_head_width: int = 2) -> None:
    """MetaLA needs whole heads per TP rank and an even per-head width (q/k use half of it)."""
    if hidden_size % heads:
        raise ValueError(f"hidden_size {hidden_size} is not divisible by num_attention_heads {heads}")
    if (hidden_size // heads) % min_head_width:
        raise ValueError(
            f"hidden_size {hidden_size} / num_attention_heads {heads} = {hidden_size // heads} "
            f"per head must be divisible by {min_head_width}"
        )
    if heads % tensor_parallel:
        raise ValueError(
            f"num_attention_heads {heads} is not divisible by model_parallel_size "
            f"{tensor_parallel}: every tensor-parallel rank must own whole heads"
        )

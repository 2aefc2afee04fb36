"""ModelShape: the numbers that fix every weight of a model, and GPT-NeoX's rules for the derived ones.

The config builds it (`NeoXArgs.model_shape`, which also names the keys a checkpoint's shape is checked by),
`model.sizes` counts parameters, FLOPs and memory from it, and the trainer's MFU and the size report use those
counts. Imports only `ops.options` (no torch), so that every package can use it.
Shapes and parameter tables: shared/design/metala-spec.md §2.1 (mixer), §3 (block, model), §6.2 (TP layout).
"""

from __future__ import annotations

import dataclasses
import math

from .ops.options import MetaLAOptions

LAYER_TYPES = ("metala", "attention")
NORM_PARAMS_PER_CHANNEL = {"layernorm": 2, "rmsnorm": 1, "simple_rmsnorm": 0}  # weight+bias / scale / nothing


@dataclasses.dataclass(frozen=True)
class ModelShape:
    """The numbers that fix every weight shape. `vocab_size` is the padded size the embedding is built with."""

    num_layers: int
    hidden_size: int
    num_attention_heads: int
    vocab_size: int
    seq_length: int
    intermediate_size: int
    layer_types: tuple[str, ...]  # one of LAYER_TYPES per layer
    tied_embeddings: bool  # config: not no_weight_tying
    norm: str  # a key of NORM_PARAMS_PER_CHANNEL
    metala: MetaLAOptions = MetaLAOptions()  # conv width and self-augmentation fix weights; chunk size FLOPs

    def __post_init__(self):
        object.__setattr__(self, "layer_types", tuple(self.layer_types))
        if len(self.layer_types) != self.num_layers:
            raise ValueError(f"layer_types has {len(self.layer_types)} entries but num_layers is {self.num_layers}")
        unknown = sorted(set(self.layer_types) - set(LAYER_TYPES))
        if unknown:
            raise ValueError(f"unknown layer types {unknown}; choose from {LAYER_TYPES}")
        if self.norm not in NORM_PARAMS_PER_CHANNEL:
            raise ValueError(f"unknown norm {self.norm!r}; choose from {tuple(NORM_PARAMS_PER_CHANNEL)}")
        if self.hidden_size % (2 * self.num_attention_heads):
            raise ValueError(
                f"hidden_size {self.hidden_size} must be divisible by 2 * num_attention_heads "
                f"= {2 * self.num_attention_heads} (MetaLA's head_k_dim is hidden_size / (2·heads))"
            )

    @property
    def head_k_dim(self) -> int:  # q / decay / key width per head (D/2H)
        return self.hidden_size // (2 * self.num_attention_heads)

    @property
    def head_v_dim(self) -> int:  # value / output width per head (D/H)
        return self.hidden_size // self.num_attention_heads


def default_intermediate_size(hidden_size: int) -> int:
    """SwiGLU width, neox `LLaMAParallelMLP` rule (spec §3.1): 256·ceil(int(8D/3)/256); 1024 -> 2816, 2048 -> 5632.

    The one copy of the rule: config, layers and sizes all use it."""
    return 256 * math.ceil(int(2 * hidden_size * 4 / 3) / 256)


def padded_vocab_size(vocab_size: int, divisible_by: int = 128, tp: int = 1) -> int:
    """NeoX pads the vocabulary to a multiple of make_vocab_size_divisible_by · tp (50,277 -> 50,304), so every
    tensor-parallel shard of the embedding has the same, GPU-friendly size. The one copy of the rule."""
    multiple = divisible_by * tp
    return -(-vocab_size // multiple) * multiple

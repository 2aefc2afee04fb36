"""Model shape keys (NeoX's NeoXArgsModel subset that a MetaLA / Transformer++ stack uses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..shape import default_intermediate_size
from .errors import ConfigError, choices_text, did_you_mean
from .fields import Section, SourceOf, require

LayerType = Literal["metala", "attention"]
LAYER_TYPES: tuple[str, ...] = ("metala", "attention")

# The init functions NeoX users put in their files (Pythia uses small_init / wang_init).
InitMethod = Literal["normal", "scaled_normal", "small_init", "wang_init"]

POS_EMBS: tuple[str, ...] = ("rotary", "none")
NEOX_ONLY_POS_EMBS: tuple[str, ...] = ("learned", "sinusoidal", "rpe", "alibi")

REQUIRED_MODEL_KEYS = ("num_layers", "hidden_size", "num_attention_heads", "seq_length")


@dataclass
class ModelConfig(Section):
    num_layers: int | None = None
    """Number of layers (MetaLA or attention blocks). Required; NeoX default None."""

    hidden_size: int | None = None
    """Model width. Required; NeoX default None."""

    num_attention_heads: int | None = None
    """Heads per layer (MetaLA heads for metala layers). Must divide hidden_size. Required; NeoX default None."""

    seq_length: int | None = None
    """Training sequence length in tokens. Required; NeoX default None."""

    max_position_embeddings: int | None = None
    """The longest context the model is meant for: evaluation's default window and the HF export's
    max_position_embeddings (which lm-eval and HF generation read). No table is sized by it (RoPE needs none; NeoX
    sizes only its learned position embeddings, refused here). Default (as NeoX): seq_length."""

    intermediate_size: int | None = None
    """SwiGLU hidden width. Default 256 * ceil(int(8 * hidden_size / 3) / 256) (NeoX's default, 4h, is for GeLU)."""

    norm: Literal["layernorm", "rmsnorm", "simple_rmsnorm"] = "layernorm"
    """Normalisation layer; simple_rmsnorm is RMSNorm without a learned scale. NeoX default "layernorm"."""

    layernorm_epsilon: float = 1.0e-5
    """Epsilon of LayerNorm. NeoX default 1e-5."""

    rms_norm_epsilon: float = 1.0e-8
    """Epsilon of RMSNorm and simple_rmsnorm. NeoX default 1e-8."""

    hidden_dropout: float = 0.0
    """Dropout on the residual branches. NeoX default 0.0."""

    attention_dropout: float = 0.0
    """Dropout on the attention probabilities of attention layers, in training (SDPA's dropout_p); MetaLA
    layers have no probabilities to drop. NeoX default 0.0."""

    no_weight_tying: bool = False
    """True: separate input embedding and output projection. NeoX default False (tied)."""

    init_method: InitMethod = "normal"
    """Initialisation of all weights but the residual-output projections. NeoX default "normal"."""

    output_layer_init_method: InitMethod = "scaled_normal"
    """Initialisation of the projections that write into the residual stream. NeoX default "scaled_normal"."""

    init_method_std: float = 0.02
    """Standard deviation of the "normal" initialisations. NeoX default 0.02."""

    make_vocab_size_divisible_by: int = 128
    """Pad the vocabulary to a multiple of this times model_parallel_size. NeoX default 128."""

    attention_config: list | None = None
    """Layer types in NeoX form: [[["metala"], 24]] or [[["metala", "metala", "attention"], 8]]; each item
    [pattern, repeat] expands to pattern * repeat. Types: "metala", "attention" (Transformer++ softmax
    attention). Default: [[["metala"], num_layers]] (NeoX's default is global attention)."""

    pos_emb: str = "rotary"
    """Position encoding of the attention layers: "rotary" (RoPE on rotary_pct of each head) or "none"; MetaLA
    layers never use one. Default "rotary" (NeoX's default "learned" and its other encodings are refused)."""

    rotary_pct: float = 1.0
    """Fraction of each head's dimensions that rotary embedding rotates. NeoX default 1.0."""

    rotary_emb_base: int = 10000
    """Base of the rotary frequencies. NeoX default 10000."""

    reset_attention_mask: bool = False
    """Packed documents do not see each other: after each EOD token of a training sample, MetaLA layers restart
    their recurrent state and short convolution (exactly as if each document ran alone) and attention layers
    attend only within the document (block-diagonal causal mask). Megatron-LM's key and meaning (GPT-NeoX has no
    such key); model-wide, so hybrid stacks stay consistent. Training and evaluation batches only: generation
    and exported models run their input as one sequence. Default False (documents run into each other, as in
    NeoX)."""

    reset_position_ids: bool = False
    """Megatron-LM's companion key (positions restart after each EOD). Accepted only together with
    reset_attention_mask, where it changes nothing here: MetaLA has no positions and RoPE is relative, so a
    document masked apart scores the same wherever it sits. Default False."""

    def check_values(self, source_of: SourceOf) -> None:
        for key in REQUIRED_MODEL_KEYS:
            require(getattr(self, key) is not None, f"missing required key '{key}'", key, source_of)
        for key in (
            "num_layers",
            "hidden_size",
            "num_attention_heads",
            "seq_length",
            "make_vocab_size_divisible_by",
            "rotary_emb_base",
        ):
            require(getattr(self, key) > 0, f"{key} must be > 0, got {getattr(self, key)}", key, source_of)
        for key in ("max_position_embeddings", "intermediate_size"):
            value = getattr(self, key)
            require(value is None or value > 0, f"{key} must be > 0, got {value}", key, source_of)
        for key in ("hidden_dropout", "attention_dropout"):
            value = getattr(self, key)
            require(0.0 <= value < 1.0, f"{key} must be in [0, 1), got {value}", key, source_of)
        for key in ("layernorm_epsilon", "rms_norm_epsilon", "init_method_std"):
            value = getattr(self, key)
            require(value > 0, f"{key} must be > 0, got {value}", key, source_of)
        _check_pos_emb(self.pos_emb, source_of)
        require(
            self.reset_attention_mask or not self.reset_position_ids,
            "reset_position_ids: true needs reset_attention_mask: true (documents masked apart; RoPE is relative, "
            "so restarting positions alone is not implemented); set both, or drop reset_position_ids",
            "reset_position_ids",
            source_of,
        )
        require(
            0.0 < self.rotary_pct <= 1.0,
            f"rotary_pct must be in (0, 1], got {self.rotary_pct}",
            "rotary_pct",
            source_of,
        )
        if self.attention_config is not None:
            expand_attention_config(self.attention_config, source_of("attention_config"))

    def derive(self, source_of: SourceOf) -> None:
        """Stage three: fill the defaults that depend on other keys, then check the layer count."""
        if self.max_position_embeddings is None:
            self.max_position_embeddings = self.seq_length
        require(
            self.max_position_embeddings >= self.seq_length,
            f"max_position_embeddings ({self.max_position_embeddings}) is smaller than seq_length "
            f"({self.seq_length}); raise it or drop it to default to seq_length",
            "max_position_embeddings",
            source_of,
        )
        if self.intermediate_size is None:
            self.intermediate_size = default_intermediate_size(self.hidden_size)
        if self.attention_config is None:
            self.attention_config = [[["metala"], self.num_layers]]
        expanded = expand_attention_config(self.attention_config, source_of("attention_config"))
        require(
            len(expanded) == self.num_layers,
            f"attention_config expands to {len(expanded)} layers but num_layers is {self.num_layers}; "
            f"make the repeats add up to num_layers",
            "attention_config",
            source_of,
        )
        require(
            self.hidden_size % self.num_attention_heads == 0,
            f"hidden_size ({self.hidden_size}) is not divisible by num_attention_heads ({self.num_attention_heads})",
            "num_attention_heads",
            source_of,
        )
        head_width = self.hidden_size // self.num_attention_heads
        require(
            "metala" not in expanded or head_width % 2 == 0,
            f"hidden_size / num_attention_heads = {head_width} must be even for MetaLA layers (queries and "
            f"keys use half of each head)",
            "num_attention_heads",
            source_of,
        )

    @property
    def norm_epsilon(self) -> float:
        """The epsilon of the chosen norm: layernorm_epsilon for layernorm, rms_norm_epsilon otherwise."""
        return self.layernorm_epsilon if self.norm == "layernorm" else self.rms_norm_epsilon


def _check_pos_emb(pos_emb: str, source_of: SourceOf) -> None:
    if pos_emb in POS_EMBS:
        return
    if pos_emb in NEOX_ONLY_POS_EMBS:
        problem = f"pos_emb: {pos_emb!r} is a GPT-NeoX position encoding that neox-metala does not implement"
    else:
        problem = f"pos_emb: unknown value {pos_emb!r}{did_you_mean(pos_emb, POS_EMBS + NEOX_ONLY_POS_EMBS)}"
    raise ConfigError(
        f"{problem}; supported: {choices_text(POS_EMBS)} (RoPE or nothing in attention layers; "
        f"MetaLA layers use no position encoding)",
        source_of("pos_emb"),
        "pos_emb",
    )


def expand_attention_config(attention_config: list, source: str | None = None) -> list[str]:
    """[[["metala", "attention"], 2], [["metala"], 1]] -> ["metala", "attention", "metala", "attention", "metala"]."""
    layers: list[str] = []
    for item in attention_config:
        if not (
            isinstance(item, (list, tuple))
            and len(item) == 2
            and isinstance(item[0], (list, tuple))
            and isinstance(item[1], int)
            and not isinstance(item[1], bool)
            and item[1] > 0
        ):
            raise ConfigError(
                f"attention_config: each item must be [[layer types...], repeat > 0] as in "
                f'[[["metala"], 24]], got {item!r}',
                source,
                "attention_config",
            )
        pattern, repeat = item
        for layer_type in pattern:
            if layer_type not in LAYER_TYPES:
                raise ConfigError(
                    f"attention_config: unknown layer type {layer_type!r}; allowed: {choices_text(LAYER_TYPES)}"
                    f"{did_you_mean(str(layer_type), LAYER_TYPES)}",
                    source,
                    "attention_config",
                )
        layers.extend(list(pattern) * repeat)
    if not layers:
        raise ConfigError('attention_config: is empty; e.g. [[["metala"], 24]]', source, "attention_config")
    return layers

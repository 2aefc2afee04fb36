"""Our single-rank state dict <-> the official MetaLA Hugging Face layout (spec §5.5), and the HF config.

Ours (`training.checkpoint_files`): `layers.0` embedding, `layers.{i+1}` block i, `layers.{L+1}` final norm,
`layers.{L+2}` untied head; fused projections [q | decay logits | v | gate] and [w1 | w3].
HF: `model.embed_tokens`, `model.layers.{i}.{token_norm, token_mixer, channel_norm, channel_mixer}`,
`model.final_norm`, `lm_head` (absent when tied). Both directions are pure re-indexing (split / cat / reshape),
so a round trip returns the very same tensors, and the padded vocabulary is kept as it is (as GPT-NeoX's own
HF export does): the HF `vocab_size` is the padded one.

Extensions beyond the official config (the official class ignores them and cannot load such models):
`metala_layer_types` ("attention" layers: `token_mixer.{q,k,v,out}_proj`, RoPE), `norm_type: "rmsnorm"` (our learned-
scale RMSNorm, `*_norm.weight`), `conv_kernel_size` (0: no short conv) and `self_augmentation: false`.
"""

from __future__ import annotations

import torch

from ..ops.options import PROJECTION_PARTS, MetaLAOptions, projection_widths

# Our norm names -> the HF config's norm_type. The official model knows "simplermsnorm" and, for any other
# value, nn.LayerNorm(D) (eps 1e-5); "rmsnorm" is ours only.
NORM_TYPES = {"simple_rmsnorm": "simplermsnorm", "layernorm": "layernorm", "rmsnorm": "rmsnorm"}
NORM_PARAMS = {"simple_rmsnorm": {}, "layernorm": {"weight": "weight", "bias": "bias"}, "rmsnorm": {"scale": "weight"}}


class ConversionError(ValueError):
    pass


def _norm_pairs(norm: str, ours: str, theirs: str) -> list[tuple[str, str]]:
    return [(f"{ours}.{mine}", f"{theirs}.{hf}") for mine, hf in NORM_PARAMS[norm].items()]


def _block_pairs(layer_type: str, norm: str, ours: str, theirs: str, state_keys) -> list[tuple[str, str]]:
    """(our key, HF key) of the parameters that map one to one."""
    pairs = _norm_pairs(norm, f"{ours}.input_norm", f"{theirs}.token_norm")
    pairs += _norm_pairs(norm, f"{ours}.post_mixer_norm", f"{theirs}.channel_norm")
    pairs += [
        (f"{ours}.mixer.out_proj.weight", f"{theirs}.token_mixer.out_proj.weight"),
        (f"{ours}.mlp.w2.weight", f"{theirs}.channel_mixer.l3.weight"),
    ]
    if layer_type == "metala":
        pairs.append((f"{ours}.mixer.gate_bias", f"{theirs}.token_mixer.g_proj.bias"))
        if f"{ours}.mixer.aug_balance" in state_keys:
            pairs.append((f"{ours}.mixer.aug_balance", f"{theirs}.token_mixer.aug_balance"))
    return pairs


def _fused_parts(layer_type: str, ours: str, theirs: str, hidden: int, width: int):
    """(our fused key, [(HF key, rows)]) of the projections that we keep fused."""
    mixer = f"{theirs}.token_mixer"
    if layer_type == "metala":
        # our part names are the official model's module names
        in_proj = [
            (f"{mixer}.{name}.weight", rows)
            for name, rows in zip(PROJECTION_PARTS, projection_widths(hidden), strict=True)
        ]
        fused = [(f"{ours}.mixer.in_proj.weight", in_proj)]
    else:
        fused = [(f"{ours}.mixer.qkv_proj.weight", [(f"{mixer}.{n}_proj.weight", hidden) for n in "qkv"])]
    fused.append(
        (
            f"{ours}.mlp.w1_w3.weight",
            [(f"{theirs}.channel_mixer.l1.weight", width), (f"{theirs}.channel_mixer.l2.weight", width)],
        )
    )
    return fused


def _global_pairs(num_layers: int, norm: str, tied: bool) -> list[tuple[str, str]]:
    pairs = [("layers.0.word_embeddings.weight", "model.embed_tokens.weight")]
    pairs += _norm_pairs(norm, f"layers.{num_layers + 1}.norm", "model.final_norm")
    if not tied:
        pairs.append((f"layers.{num_layers + 2}.proj.weight", "lm_head.weight"))
    return pairs


def to_hf(state: dict, layer_types: list[str], norm: str, tied: bool) -> dict[str, torch.Tensor]:
    """Our single-rank state dict -> HF keys (each tensor contiguous and owning its storage, as safetensors wants)."""
    hidden = state["layers.0.word_embeddings.weight"].shape[1]
    hf = {theirs: state[ours] for ours, theirs in _global_pairs(len(layer_types), norm, tied)}
    for i, layer_type in enumerate(layer_types):
        ours, theirs = f"layers.{i + 1}", f"model.layers.{i}"
        width = state[f"{ours}.mlp.w2.weight"].shape[1]
        hf.update({t: state[o] for o, t in _block_pairs(layer_type, norm, ours, theirs, state)})
        for fused_key, parts in _fused_parts(layer_type, ours, theirs, hidden, width):
            pieces = state[fused_key].split([rows for _, rows in parts])
            hf.update({key: piece for (key, _), piece in zip(parts, pieces)})
        conv_key = f"{ours}.mixer.conv_weight"
        if conv_key in state:
            hf[f"{theirs}.token_mixer.conv1d.weight"] = state[conv_key].unsqueeze(1)  # (D, 1, kernel): nn.Conv1d
    return {key: value.contiguous().clone() for key, value in hf.items()}


def from_hf(
    hf: dict, layer_types: list[str], norm: str, tied: bool, expected_keys: set[str]
) -> dict[str, torch.Tensor]:
    """HF keys -> our single-rank state dict; `expected_keys` (our model's parameter names) decides which optional
    parameters (conv, aug_balance) exist. Every HF tensor must be used exactly once."""
    _check_hf_keys(hf, tied)
    hidden = hf["model.embed_tokens.weight"].shape[1]
    ours_state, used = {}, set()

    def take(key):
        if key not in hf:
            raise ConversionError(
                f"the Hugging Face checkpoint has no {key}, which this model needs (its config: "
                f"{len(layer_types)} layers {layer_types}, norm {norm})"
            )
        used.add(key)
        return hf[key]

    for ours, theirs in _global_pairs(len(layer_types), norm, tied):
        ours_state[ours] = take(theirs)
    for i, layer_type in enumerate(layer_types):
        ours, theirs = f"layers.{i + 1}", f"model.layers.{i}"
        width = take(f"{theirs}.channel_mixer.l3.weight").shape[1]
        ours_state.update({o: take(t) for o, t in _block_pairs(layer_type, norm, ours, theirs, expected_keys)})
        for fused_key, parts in _fused_parts(layer_type, ours, theirs, hidden, width):
            ours_state[fused_key] = torch.cat([take(key) for key, _ in parts])
        if f"{ours}.mixer.conv_weight" in expected_keys:
            ours_state[f"{ours}.mixer.conv_weight"] = take(f"{theirs}.token_mixer.conv1d.weight").squeeze(1)
    unused = sorted(set(hf) - used - {"lm_head.weight"})
    if unused:
        raise ConversionError(
            f"the Hugging Face checkpoint has tensors this model has no place for: {unused[:5]}; "
            f"check norm_type / metala_layer_types / conv_kernel_size in its config.json"
        )
    return {key: value.contiguous().clone() for key, value in ours_state.items()}


def _check_hf_keys(hf: dict, tied: bool) -> None:
    if tied and "lm_head.weight" in hf and not torch.equal(hf["lm_head.weight"], hf["model.embed_tokens.weight"]):
        raise ConversionError(
            "config.json says tie_word_embeddings but lm_head.weight differs from "
            "model.embed_tokens.weight; set tie_word_embeddings: false in config.json"
        )


def hf_config(args, padded_vocab: int, tokenizer, dtype: torch.dtype) -> dict:
    """config.json for our run's config `args` (NeoXArgs): the official fields (spec §5.1) and our extensions."""
    from ..config import layer_types

    model, metala = args.model, args.metala.options()
    eos = tokenizer.eod_id
    return {
        "architectures": ["MetaLAForCausalLM"],
        "model_type": "metala",
        "auto_map": {
            "AutoConfig": "configuration_metala.MetaLAConfig",
            "AutoModel": "modeling_metala.MetaLAModel",
            "AutoModelForCausalLM": "modeling_metala.MetaLAForCausalLM",
        },
        "vocab_size": padded_vocab,
        "decoder_embed_dim": model.hidden_size,
        "decoder_layers": model.num_layers,
        "decoder_attention_heads": model.num_attention_heads,
        "glu_dim": model.intermediate_size,
        "glu_act": "silu",
        "bias": False,
        "norm_type": NORM_TYPES[model.norm],
        "norm_eps": model.norm_epsilon,
        "no_scale_embedding": True,
        "init_std": model.init_method_std,
        "use_cache": True,
        "pad_token_id": tokenizer.pad_id,
        "bos_token_id": eos,
        "eos_token_id": eos,
        "add_bos_token": False,
        "causal": True,
        "tie_word_embeddings": not model.no_weight_tying,
        "metala_layer_types": layer_types(args),
        "conv_kernel_size": metala.conv_width,
        "self_augmentation": metala.self_augmentation,
        "decay_normalizer": metala.decay_normalizer,
        "chunk_size": metala.chunk_size,
        "rotary_pct": model.rotary_pct if model.pos_emb == "rotary" else 0.0,
        "max_position_embeddings": model.max_position_embeddings,
        "rotary_emb_base": model.rotary_emb_base,
        "torch_dtype": str(dtype).removeprefix("torch."),
    }


def neox_model_keys(config: dict) -> dict:
    """Our model keys (NeoX names) from an HF config.json, official or ours."""
    hidden = config["decoder_embed_dim"]
    glu_dim = config.get("glu_dim", 5632)
    norm_type = config.get("norm_type", "simplermsnorm")
    norm = {"simplermsnorm": "simple_rmsnorm", "rmsnorm": "rmsnorm"}.get(norm_type, "layernorm")
    layers = config.get("metala_layer_types") or ["metala"] * config["decoder_layers"]
    if len(layers) != config["decoder_layers"]:
        raise ConversionError(
            f"config.json: metala_layer_types has {len(layers)} entries but decoder_layers is "
            f"{config['decoder_layers']}"
        )
    official_only = (config.get("glu_act", "silu"), config.get("bias", False), config.get("no_scale_embedding", True))
    if official_only != ("silu", False, True):
        raise ConversionError(
            "config.json: only glu_act 'silu', bias false and no_scale_embedding true (the "
            "official defaults) have an equivalent here"
        )
    defaults = MetaLAOptions()
    kernel = config.get("conv_kernel_size", defaults.conv_kernel_size)
    keys = {
        "num_layers": config["decoder_layers"],
        "hidden_size": hidden,
        "num_attention_heads": config["decoder_attention_heads"],
        "intermediate_size": hidden if glu_dim == -1 else glu_dim,
        "norm": norm,
        "no_weight_tying": not config.get("tie_word_embeddings", True),
        "attention_config": (
            [[[layers[0]], len(layers)]] if len(set(layers)) == 1 else [[[layer], 1] for layer in layers]
        ),
        "metala_short_conv": kernel > 0,
        "metala_self_augmentation": config.get("self_augmentation", True),
        "metala_decay_normalizer": config.get("decay_normalizer", defaults.decay_normalizer),
        "init_method_std": config.get("init_std", 0.02),
    }
    if kernel > 0:
        keys["metala_conv_kernel_size"] = kernel
    if norm == "layernorm":
        keys["layernorm_epsilon"] = config.get("norm_eps", 1e-5)  # the official LayerNorm's eps is 1e-5
    elif norm == "rmsnorm":
        keys["rms_norm_epsilon"] = config.get("norm_eps", 1e-8)
    if "attention" in layers and config.get("rotary_pct", 1.0) == 0:
        keys.update(pos_emb="none")
    elif "attention" in layers:
        keys.update(
            pos_emb="rotary",
            rotary_pct=config.get("rotary_pct", 1.0),
            rotary_emb_base=config.get("rotary_emb_base", 10000),
        )
    return keys

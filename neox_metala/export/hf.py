"""A checkpoint of ours (any TP / PP layout) -> a Hugging Face folder that
`AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)` loads:

    config.json                 official MetaLA fields (spec §5.1) + ours, auto_map to the files below
    configuration_metala.py     MetaLAConfig
    modeling_metala.py          MetaLAForCausalLM (generate(): greedy and sampling, left padding)
    metala_*.py                 neox_metala/ops' reference, chunked and short-conv code, copied verbatim
    model.safetensors           official key names (spec §5.5); no lm_head.weight when the head is tied
    tokenizer.json, tokenizer_config.json, generation_config.json
"""

from __future__ import annotations

import json
import os
import shutil

import torch

from ..data.tokenizers import load_tokenizer
from ..training.checkpoint_files import checkpoint_config, find_step_dir, model_description, read_full_state
from .convert import ConversionError, hf_config, to_hf

HF_MODEL_DIR = os.path.join(os.path.dirname(__file__), "hf_model")
OPS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "ops")
# Shipped beside modeling_metala.py, which imports them relatively (transformers copies them with it).
SHIPPED_OPS = {
    "reference.py": "metala_reference.py",
    "chunked.py": "metala_chunked.py",
    "causal_conv.py": "metala_short_conv.py",
}
WEIGHTS_FILE = "model.safetensors"


def tokenizer_of(args, vocab_file: str | None = None):
    data = args.data
    path = vocab_file or data.vocab_file
    if path is None:
        raise ConversionError("the checkpoint's config has no vocab_file; pass --vocab-file")
    return load_tokenizer(data.tokenizer_type, path, data.merge_file)


def write_model_code(out_dir: str) -> None:
    for name in ("configuration_metala.py", "modeling_metala.py", "cache_metala.py"):
        shutil.copyfile(os.path.join(HF_MODEL_DIR, name), os.path.join(out_dir, name))
    for source, target in SHIPPED_OPS.items():
        shutil.copyfile(os.path.join(OPS_DIR, source), os.path.join(out_dir, target))


def write_tokenizer(tokenizer, out_dir: str) -> None:
    """tokenizer.json + a PreTrainedTokenizerFast config; padding on the left, as batched generation needs."""
    backend = getattr(tokenizer, "_hf", None)  # HFTokenizer / GPT2BPETokenizer keep a `tokenizers.Tokenizer`
    if backend is None:
        raise ConversionError(
            f"{tokenizer.name} cannot be exported as tokenizer.json yet; convert the tokenizer to "
            f"an HF tokenizers JSON (tokenizer_type: HFTokenizer) and pass it as --vocab-file"
        )
    backend.save(os.path.join(out_dir, "tokenizer.json"))
    eos = backend.id_to_token(tokenizer.eod_id)
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": eos,
        "bos_token": eos,
        "pad_token": backend.id_to_token(tokenizer.pad_id),
        "padding_side": "left",
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1 << 30,
    }
    _write_json(os.path.join(out_dir, "tokenizer_config.json"), config)


def generation_config(tokenizer, padded_vocab: int) -> dict:
    """Ids past the tokenizer's vocabulary (the vocab padding) are never generated, here as in our generate."""
    config = {"bos_token_id": tokenizer.eod_id, "eos_token_id": tokenizer.eod_id, "pad_token_id": tokenizer.pad_id}
    if padded_vocab > tokenizer.vocab_size:
        config["suppress_tokens"] = list(range(tokenizer.vocab_size, padded_vocab))
    return config


def _write_json(path: str, value: dict) -> None:
    with open(path, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def export_hf(load_dir: str, out_dir: str, iteration: int | None = None, vocab_file: str | None = None) -> str:
    """Write the HF folder for step `iteration` (default: the latest complete one) of `load_dir`; returns out_dir."""
    from safetensors.torch import save_file

    step_dir = find_step_dir(load_dir, iteration)
    args = checkpoint_config(step_dir)
    settings, layer_types, tied = model_description(args)
    state = read_full_state(step_dir, settings, layer_types, tied)
    tokenizer = tokenizer_of(args, vocab_file)
    padded_vocab = state["layers.0.word_embeddings.weight"].shape[0]
    if tokenizer.vocab_size > padded_vocab:
        raise ConversionError(
            f"the tokenizer has {tokenizer.vocab_size} tokens but the checkpoint's embedding only "
            f"{padded_vocab} rows; pass the run's tokenizer as --vocab-file"
        )
    weights = to_hf(state, layer_types, args.model.norm, tied)
    dtype = weights["model.embed_tokens.weight"].dtype
    os.makedirs(out_dir, exist_ok=True)
    save_file(weights, os.path.join(out_dir, WEIGHTS_FILE), metadata={"format": "pt"})
    _write_json(os.path.join(out_dir, "config.json"), hf_config(args, padded_vocab, tokenizer, dtype))
    _write_json(os.path.join(out_dir, "generation_config.json"), generation_config(tokenizer, padded_vocab))
    write_model_code(out_dir)
    write_tokenizer(tokenizer, out_dir)
    return out_dir


def read_hf_folder(hf_dir: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """(config.json, all weights) of an HF folder: model.safetensors, sharded safetensors, or pytorch_model.bin."""
    from safetensors.torch import load_file

    with open(os.path.join(hf_dir, "config.json")) as f:
        config = json.load(f)
    files = sorted(n for n in os.listdir(hf_dir) if n.endswith(".safetensors"))
    if files:
        weights = {}
        for name in files:
            weights.update(load_file(os.path.join(hf_dir, name)))
        return config, weights
    if os.path.exists(os.path.join(hf_dir, "pytorch_model.bin")):
        return config, torch.load(os.path.join(hf_dir, "pytorch_model.bin"), map_location="cpu", weights_only=True)
    raise ConversionError(f"{hf_dir} has no *.safetensors and no pytorch_model.bin")

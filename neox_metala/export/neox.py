"""A MetaLA Hugging Face folder (the official layout of spec §5.5, or one we exported) -> a checkpoint of ours for
any TP / PP layout, at iteration 0 with a fresh optimizer: `load` it to continue training (fine-tuning).

The checkpoint is written the way training writes one: every rank of a (TP x PP x DP) gloo group on CPU builds
the model with the trainer's engine builder, copies its shard of the imported weights in and calls
`training.checkpoint.save`. So the files are DeepSpeed's own, and the optimizer state (empty Adam moments, fp32
master weights equal to the imported ones) matches the `-d` config's optimizer, precision and ZeRO stage.
DeepSpeed only loads ZeRO optimizer state into the data-parallel size it was saved with: pass the DP size of the
run that will load it as --data-parallel-size.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile

import torch

from .. import parallel
from ..training.checkpoint_files import canonical_name, single_rank_model
from .convert import ConversionError, from_hf, neox_model_keys
from .hf import read_hf_folder

IMPORTED_TOKENIZER = "tokenizer.json"
# Training keys the config needs when no -d files are given. The optimizer's type and the precision shape the
# saved optimizer state; the others are not saved at all.
IMPORT_DEFAULTS = {"seq_length": 2048, "train_iters": 1, "optimizer": {"type": "AdamW", "params": {"lr": 1.0e-4}}}


def import_config(
    hf_config: dict,
    out_dir: str,
    tp: int,
    pp: int,
    dp: int,
    conf_files=None,
    conf_dir=None,
    tokenizer_file: str | None = None,
):
    """The run config of the imported model: the user's files (optimizer, precision, ...) with the model keys
    from config.json; a model key the files set differently is an error."""
    from ..config import NeoXArgs, expand_attention_config
    from ..config.loader import config_file_paths, merge_config_files

    values, sources = merge_config_files(config_file_paths(conf_files, conf_dir)) if conf_files else ({}, {})
    model_keys = neox_model_keys(hf_config)
    for key, value in model_keys.items():
        same = (
            expand_attention_config(values[key]) == expand_attention_config(value)
            if key == "attention_config" and key in values
            else values.get(key, value) == value
        )
        if not same:
            raise ConversionError(
                f"{sources.get(key)}: {key} is {values[key]!r} but the Hugging Face model has "
                f"{value!r}; remove the key from the config files"
            )
    if "attention_config" in values:  # same layers (checked above): the user's spelling is kept
        model_keys["attention_config"] = values["attention_config"]
    values.update(model_keys)
    for key, value in IMPORT_DEFAULTS.items():  # only to build the engine; the run's own files decide later
        values.setdefault(key, value)
    if "train_batch_size" not in values:
        values.setdefault("train_micro_batch_size_per_gpu", 1)
    values.update(model_parallel_size=tp, pipe_parallel_size=pp, save=out_dir, load=out_dir)
    if tokenizer_file:
        values.update(tokenizer_type="HFTokenizer", vocab_file=tokenizer_file)
    return NeoXArgs.from_flat(values, sources).resolve(tp * max(pp, 1) * dp)


def padded_state(state: dict, args, tokenizer_vocab: int, tied: bool) -> tuple[dict, int]:
    """Pad the embedding (and untied head) with zero rows to the vocab size training computes from the tokenizer."""
    from ..config import padded_vocab_size

    padded = padded_vocab_size(
        tokenizer_vocab, args.model.make_vocab_size_divisible_by, args.parallel.model_parallel_size
    )
    keys = ["layers.0.word_embeddings.weight"] + ([] if tied else [f"layers.{args.model.num_layers + 2}.proj.weight"])
    rows = state[keys[0]].shape[0]
    if rows > padded:
        raise ConversionError(
            f"the model has {rows} vocabulary rows but training pads the tokenizer's "
            f"{tokenizer_vocab} tokens only to {padded}; raise make_vocab_size_divisible_by in "
            f"the config files"
        )
    for key in keys:
        state[key] = torch.cat([state[key], state[key].new_zeros(padded - rows, state[key].shape[1])])
    return state, padded


def _save_worker(rank: int, world_size: int, config_dict: dict, state_path: str, tokenizer_record: dict):
    from ..config import NeoXArgs
    from ..model.reshard import split_tp_shard, tp_layout
    from ..training import checkpoint
    from ..training.engine import build_model, initialize_engine
    from ..training.trainer import TrainState  # what a resume rebuilds from the client state

    args = NeoXArgs.from_dict(config_dict)
    layout = parallel.initialize(args.parallel.model_parallel_size, args.parallel.pipeline_stages, backend="gloo")
    try:
        model = build_model(args, layout, tokenizer_record["padded_vocab_size"])
        full = torch.load(state_path, map_location="cpu", mmap=True, weights_only=True)
        tp, tp_rank = parallel.tensor_parallel_size(), parallel.tensor_parallel_rank()
        with torch.no_grad():
            for name, param in model.named_parameters():
                param.copy_(split_tp_shard(full[canonical_name(name)], tp, tp_rank, *tp_layout(param)))
        engine = initialize_engine(args, model)
        checkpoint.save(
            engine,
            args.checkpoint.save,
            0,
            {"train_state": dataclasses.asdict(TrainState())},
            args.to_yaml(),
            marker={"tokenizer": tokenizer_record},
        )
    finally:
        parallel.destroy()


def import_hf(
    hf_dir: str,
    out_dir: str,
    tp: int = 1,
    pp: int = 0,
    dp: int = 1,
    conf_files=None,
    conf_dir=None,
    vocab_file: str | None = None,
) -> str:
    """Write `out_dir/global_step0` (and `latest`) from the HF folder; returns the step folder."""

    from ..data.tokenizers import load_tokenizer
    from ..training.checkpoint_files import model_description

    hf_config, weights = read_hf_folder(hf_dir)
    os.makedirs(out_dir, exist_ok=True)
    tokenizer_file = None
    if vocab_file is None and os.path.exists(os.path.join(hf_dir, IMPORTED_TOKENIZER)):
        tokenizer_file = os.path.abspath(os.path.join(out_dir, IMPORTED_TOKENIZER))
        shutil.copyfile(os.path.join(hf_dir, IMPORTED_TOKENIZER), tokenizer_file)
    args = import_config(
        hf_config, os.path.abspath(out_dir), tp, pp, dp, conf_files, conf_dir, vocab_file or tokenizer_file
    )
    if args.data.vocab_file is None:
        raise ConversionError(
            f"{hf_dir} has no tokenizer.json: pass --vocab-file (or set tokenizer_type and "
            f"vocab_file in the config files)"
        )
    tokenizer = load_tokenizer(args.data.tokenizer_type, args.data.vocab_file, args.data.merge_file)
    settings, layer_types, tied = model_description(args)
    vocab = weights["model.embed_tokens.weight"].shape[0]
    expected = {name for name, _ in single_rank_model(settings, layer_types, vocab, tied, "meta").named_parameters()}
    state = from_hf(weights, layer_types, args.model.norm, tied, expected)
    state, padded_vocab = padded_state(state, args, tokenizer.vocab_size, tied)
    tokenizer_record = {
        "vocab_size": tokenizer.vocab_size,
        "padded_vocab_size": padded_vocab,
        "fingerprint": tokenizer.fingerprint,
    }  # as the trainer records it
    with tempfile.TemporaryDirectory(dir=out_dir) as scratch:
        state_path = os.path.join(scratch, "full_state.pt")
        torch.save(state, state_path)
        world_size = args.derived.world_size
        parallel.run_cpu_ranks(_save_worker, world_size, args.to_dict(), state_path, tokenizer_record)
    return os.path.join(out_dir, "global_step0")

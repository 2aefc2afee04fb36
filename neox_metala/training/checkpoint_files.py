"""Our checkpoints (training/checkpoint.py's layout, DeepSpeed's files) read into one full model on one process.

    SAVE/latest, SAVE/global_stepN/{complete.json, neox_config.yml, ...}
    plain engine (pipe_parallel_size 0): mp_rank_{tp:02d}_model_states.pt, the whole model's shard in ["module"]
    pipeline engine:                     layer_{index:02d}-model_{tp:02d}-model_states.pt, one layer's shard each
                                         (a tied head has no file: it is the embedding)

Either way the result is the state dict of a single-rank `SequentialModel` (keys `layers.{index}.…`, index as in
`gpt.layer_specs`), its tensor-parallel shards merged by `reshard.merge_tp_shards` with the layout that the
parameters themselves declare. Used by the Hugging Face export, generation and evaluation.
"""

from __future__ import annotations

import os
import re

import torch

from ..layers.settings import BlockSettings
from ..model import gpt
from ..model.reshard import merge_tp_shards, tp_layout

MP_RANK_FILE = re.compile(r"^mp_rank_(\d+)_model_states\.pt$")
LAYER_FILE = re.compile(r"^layer_(\d+)-model_(\d+)-model_states\.pt$")


class CheckpointFormatError(RuntimeError):
    pass


def find_step_dir(load_dir: str, iteration: int | None = None) -> str:
    """The folder of step `iteration`, or of the step `load_dir`/latest names (falling back as a resume does)."""
    from . import checkpoint

    if iteration is not None:
        step_dir = os.path.join(load_dir, checkpoint.step_tag(iteration))
    else:
        tag = checkpoint.find_resume_tag(load_dir)
        if tag is None:
            raise CheckpointFormatError(
                f"{load_dir} holds no checkpoint (no global_stepN folder); point --load at "
                f"the folder a run saved to (its `save` key)"
            )
        step_dir = os.path.join(load_dir, tag)
    reason = checkpoint.incompleteness(step_dir)
    if reason is not None:
        raise CheckpointFormatError(f"{step_dir} is not a usable checkpoint: {reason}; pick another --iteration")
    return step_dir


def _shard_files(step_dir: str) -> tuple[bool, dict[int, dict[int, str]]]:
    """(is_pipeline, {layer index or -1 for the whole model: {tp rank: path}})."""
    names = os.listdir(step_dir)
    layers: dict[int, dict[int, str]] = {}
    for name in names:
        if match := LAYER_FILE.match(name):
            layers.setdefault(int(match.group(1)), {})[int(match.group(2))] = os.path.join(step_dir, name)
    if layers:
        return True, layers
    whole = {int(m.group(1)): os.path.join(step_dir, n) for n in names if (m := MP_RANK_FILE.match(n))}
    if not whole:
        raise CheckpointFormatError(
            f"{step_dir} has neither layer_*-model_states.pt nor mp_rank_*_model_states.pt "
            f"files; it is not a checkpoint of this project"
        )
    return False, {-1: whole}


def _load_shards(is_pipeline: bool, files: dict[int, dict[int, str]]) -> list[dict[str, torch.Tensor]]:
    """One flat state dict (keys `layers.{index}.…`) per TP rank."""
    tp = len(next(iter(files.values())))
    per_rank: list[dict[str, torch.Tensor]] = [{} for _ in range(tp)]
    for index, by_rank in sorted(files.items()):
        if sorted(by_rank) != list(range(tp)):
            raise CheckpointFormatError(f"layer {index} has files for TP ranks {sorted(by_rank)}, expected 0..{tp - 1}")
        for rank, path in by_rank.items():
            state = torch.load(path, map_location="cpu", weights_only=False)
            if not is_pipeline:
                state = state["module"]
            prefix = f"layers.{index}." if is_pipeline else ""
            per_rank[rank].update(
                {prefix + key: value for key, value in state.items() if not key.endswith("_extra_state")}
            )
    return per_rank


def canonical_name(name: str) -> str:
    """A parameter's single-rank name (`layers.{index}.…`) from its name in a plain or pipeline-engine model."""
    if name.startswith("tied_modules.embed."):
        return "layers.0." + name.removeprefix("tied_modules.embed.")
    if name.split(".")[0].isdigit():
        return "layers." + name
    return name


def single_rank_model(
    settings: BlockSettings, layer_types: list[str], padded_vocab: int, tied: bool, device: str | torch.device = "cpu"
) -> gpt.SequentialModel:
    """The model as one process builds it (TP=1), on `device` ("meta": shapes and TP layouts only, no memory)."""
    with torch.device(device):
        return gpt.SequentialModel(gpt.layer_specs(settings, layer_types, padded_vocab, tied))


def full_parameter_layouts(
    settings: BlockSettings, layer_types: list[str], padded_vocab: int, tied: bool
) -> dict[str, tuple[torch.Size, tuple]]:
    """{single-rank name: (full shape, TP layout)} of every parameter. The model is built on the meta device in
    whatever model-parallel state this process has (a run converting a checkpoint has its own TP size), and the
    local shapes are scaled back to full ones."""
    from .. import parallel

    tp = parallel.tensor_parallel_size()
    expected = {}
    for name, param in single_rank_model(settings, layer_types, padded_vocab, tied, device="meta").named_parameters():
        layout = tp_layout(param)
        shape = list(param.shape)
        if layout[0] is not None:
            shape[layout[0]] *= tp
        expected[name] = (torch.Size(shape), layout)
    return expected


def read_full_state(
    step_dir: str, settings: BlockSettings, layer_types: list[str], tied: bool
) -> dict[str, torch.Tensor]:
    """The full (TP-merged) weights of a checkpoint of any TP / PP layout, in the checkpoint's dtype."""
    is_pipeline, files = _shard_files(step_dir)
    shards = _load_shards(is_pipeline, files)
    embedding_key = "layers.0.word_embeddings.weight"
    if embedding_key not in shards[0]:
        raise CheckpointFormatError(f"{step_dir}: no {embedding_key}; is it a checkpoint of this project?")
    padded_vocab = sum(shard[embedding_key].shape[0] for shard in shards)
    expected = full_parameter_layouts(settings, layer_types, padded_vocab, tied)
    unexpected = sorted(set(shards[0]) - set(expected))
    missing = sorted(set(expected) - set(shards[0]))
    if missing or unexpected:
        raise CheckpointFormatError(
            f"{step_dir} does not match the model of its neox_config.yml ({len(layer_types)} layers "
            f"{layer_types}, tied head {tied}): missing {missing[:4]}, unexpected {unexpected[:4]}"
        )
    full = {}
    for name, (shape, layout) in expected.items():
        merged = merge_tp_shards([shard[name] for shard in shards], *layout)
        if merged.shape != shape:
            raise CheckpointFormatError(
                f"{step_dir}: {name} merges to {tuple(merged.shape)} over {len(shards)} TP "
                f"ranks, expected {tuple(shape)}"
            )
        full[name] = merged
    return full


def checkpoint_config(step_dir: str):
    """The NeoXArgs a checkpoint was saved with (its neox_config.yml)."""
    from ..config import load_config
    from . import checkpoint

    path = os.path.join(step_dir, checkpoint.CONFIG_FILE)
    if not os.path.exists(path):
        raise CheckpointFormatError(
            f"{step_dir} has no {checkpoint.CONFIG_FILE}; it was not saved by this project's "
            f"trainer (or the save did not finish)"
        )
    return load_config([path])


def model_description(args) -> tuple[BlockSettings, list[str], bool]:
    """(block settings, layer types, tied head) of a run's config."""
    from ..config import layer_types
    from .engine import block_settings

    return block_settings(args), layer_types(args), not args.model.no_weight_tying


def load_single_rank_model(step_dir: str, args=None, dtype: torch.dtype = torch.float32):
    """(model on one process, in eval mode and `dtype`; the config it was built from) from a checkpoint of any
    layout. Needs torch.distributed and the model-parallel state (TP=1): see `parallel.initialize`."""
    args = args or checkpoint_config(step_dir)
    settings, layer_types, tied = model_description(args)
    state = read_full_state(step_dir, settings, layer_types, tied)
    model = single_rank_model(settings, layer_types, state["layers.0.word_embeddings.weight"].shape[0], tied)
    result = model.load_state_dict(state, strict=False)  # megatron's `_extra_state` entries hold nothing
    missing = [key for key in result.missing_keys if not key.endswith("_extra_state")]
    if missing or result.unexpected_keys:
        raise CheckpointFormatError(f"{step_dir}: missing {missing[:4]}, unexpected {result.unexpected_keys[:4]}")
    return model.to(dtype).eval(), args

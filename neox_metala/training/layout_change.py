"""Continue a run in another parallel layout: a checkpoint of (TP=a, PP=b, DP=c) becomes one of this run's layout.

DeepSpeed loads a checkpoint only into the layout that wrote it (its ZeRO partitions are tied to the data-parallel
size, its files to the engine type). So a checkpoint of another layout is converted first: every rank of an engine
built in the new layout fills its own shard from the layout-neutral form (`NeutralCheckpoint`: full weights, fp32
master weights, AdamW moments and step), takes the LR schedule, DeepSpeed's counters and the data position over,
and `checkpoint.save` writes a normal checkpoint of the new layout, which the ordinary load path then reads.
The trainer does this when `load` holds a checkpoint of another layout (into `SAVE/layouts/tp{x}-pp{y}-dp{z}/`);
`python -m neox_metala.checkpoint convert` does the same offline.

Into the flat fp32 partitions of ZeRO-1/2 and of DeepSpeed's BF16 optimizer each parameter's fragment is copied
through the mapping DeepSpeed keeps on the parameter (`_hp_mapping`: where the fragment lies in the parameter and
in the partition) — the one DeepSpeed's own `safe_set_full_*` functions use, which cannot create optimizer state
in an engine that has not stepped yet.
RNG: random streams follow the pipeline stage (every tensor- and data-parallel rank of a stage draws the same
masks), so with the same number of stages each rank takes its stage's stream; with another number of stages the
stage boundaries move and every rank takes rank 0's.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.distributed as dist

from .. import parallel
from ..model.reshard import split_tp_shard, tp_layout
from . import checkpoint
from .checkpoint_files import canonical_name
from .neutral_checkpoint import MASTER, MOMENTS, Layout, NeutralCheckpoint, checkpoint_layout, layout_of

CONVERTED_DIR = "layouts"
logger = logging.getLogger(__name__)


def converted_dir(base_dir: str, layout: Layout, with_optimizer: bool = True) -> str:
    """Where a run keeps the conversion of its `load` checkpoint into its own layout (a normal checkpoint folder;
    one without the optimizer state, for finetune / no_load_optim, apart, so that no full resume picks it up)."""
    name = f"tp{layout.tensor_parallel}-pp{layout.pipe_parallel_size}-dp{layout.data_parallel}"
    return os.path.join(base_dir, CONVERTED_DIR, name if with_optimizer else f"{name}-weights")


def _torch_optimizer(engine) -> torch.optim.Optimizer:
    optimizer = engine.optimizer
    while hasattr(optimizer, "optimizer"):  # DeepSpeed's wrappers hold the torch optimizer
        optimizer = optimizer.optimizer
    return optimizer


def _fill_partition_fragment(optimizer, mapping, tensors: dict, step) -> None:
    """Copy this rank's fragment of one parameter into the flat fp32 partition and its AdamW state."""
    flat = optimizer.param_groups[mapping.param_group_index]["params"][0]
    lp, hp = mapping.lp_fragment_address, mapping.hp_fragment_address

    def fragment(tensor):
        return tensor.reshape(-1).narrow(0, lp.start, lp.numel)

    mapping.hp_fragment.data.copy_(fragment(tensors[MASTER]))
    if step is not None:
        state = optimizer.state.setdefault(flat, _fresh_adam_state(flat, step))
        for key in MOMENTS:
            state[key].narrow(0, hp.start, hp.numel).copy_(fragment(tensors[key]))


def _fresh_adam_state(flat: torch.Tensor, step: torch.Tensor) -> dict:
    # torch's AdamW order (step first), so that the saved files list the tensors as a trained run's do
    return {"step": step.clone(), **{key: torch.zeros_like(flat) for key in MOMENTS}}


def fill_engine(engine, source: NeutralCheckpoint, with_optimizer: bool = True) -> None:
    """Set this rank's weights (and fp32 master weights, AdamW moments and step) from the full tensors of
    `source`. Without the optimizer, the master weights are the weights and the optimizer state stays fresh."""
    tp, tp_rank = parallel.tensor_parallel_size(), parallel.tensor_parallel_rank()
    optimizer = _torch_optimizer(engine)
    step = source.optimizer_step() if with_optimizer else None
    with torch.no_grad():
        for engine_name, param in engine.module.named_parameters():
            name = canonical_name(engine_name)
            layout = tp_layout(param)

            def shard(full, layout=layout):
                return split_tp_shard(full, tp, tp_rank, *layout)

            param.copy_(shard(source.weight(name)))
            tensors = {MASTER: shard(source.optimizer_tensor(name, MASTER)) if with_optimizer else param.float()}
            if with_optimizer:
                tensors.update({key: shard(source.optimizer_tensor(name, key)) for key in MOMENTS})
            if hasattr(param, "_hp_mapping"):  # ZeRO-1/2, BF16 optimizer: flat fp32 partitions
                if param._hp_mapping is not None:  # None: no fragment of it in this rank's partition
                    _fill_partition_fragment(optimizer, param._hp_mapping, tensors, step)
            elif with_optimizer:  # no ZeRO in fp32: torch's AdamW over the parameters themselves
                optimizer.state[param] = {"step": step.clone(), **{key: tensors[key].clone() for key in MOMENTS}}
        if with_optimizer:  # also partitions that hold only padding: every group steps with the same count
            for group in optimizer.param_groups:
                for flat in group["params"]:
                    optimizer.state.setdefault(flat, _fresh_adam_state(flat, step))


def source_rng_rank(source: Layout, target: Layout, rank: int) -> int:
    """The rank of `source` whose random streams rank `rank` of `target` continues (see the module docstring)."""
    if source.pipeline_stages != target.pipeline_stages:
        return 0
    stage = rank // (target.data_parallel * target.tensor_parallel)
    return source.rank(stage, 0, 0)


def convert_into(
    engine,
    source: NeutralCheckpoint,
    target: Layout,
    save_dir: str,
    config_yaml: str,
    tokenizer_record: dict | None,
    with_optimizer: bool = True,
) -> str:
    """Collective: write `source` as a checkpoint of the engine's layout to `save_dir`; returns its step folder.
    The engine keeps the converted state; this process's random streams are left as they were."""
    fill_engine(engine, source, with_optimizer)
    state = source.engine_state
    if with_optimizer:
        engine.lr_scheduler.load_state_dict(state["lr_scheduler"])
    engine.global_steps, engine.skipped_steps = state["global_steps"], state["skipped_steps"]
    engine.global_samples = state.get("global_samples", engine.global_steps * engine.train_batch_size())
    own_rng = checkpoint.rng_state()
    rng_path = source.rng_state_path(source_rng_rank(source.layout, target, dist.get_rank()))
    checkpoint.set_rng_state(torch.load(rng_path, weights_only=False))
    marker = {"converted_from": {"step_dir": os.path.abspath(source.step_dir), "layout": str(source.layout)}}
    if tokenizer_record:
        marker["tokenizer"] = tokenizer_record
    try:
        return checkpoint.save(
            engine, save_dir, source.iteration, {"train_state": state["train_state"]}, config_yaml, marker=marker
        )
    finally:
        checkpoint.set_rng_state(own_rng)


def needs_conversion(step_dir: str, args) -> Layout | None:
    """The layout of the checkpoint in `step_dir` when it differs from this run's (`args`), else None."""
    saved = checkpoint_layout(step_dir)
    return saved if saved != layout_of(args) else None


def padded_vocab_for_resume(step_dir: str, vocab_size: int, computed: int, tensor_parallel: int) -> int:
    """The vocabulary rows to build: the checkpoint's when this run's TP size pads the tokenizer's vocabulary to
    another multiple (padding rows take part in the softmax, so only the same rows continue the run exactly)."""
    record = checkpoint.read_marker(step_dir).get("tokenizer") or {}
    saved = record.get("padded_vocab_size")
    if saved in (None, computed) or record.get("vocab_size") != vocab_size:
        return computed  # the same padding, or another vocabulary (check_same_model names it)
    if saved % tensor_parallel:
        raise checkpoint.CheckpointError(
            f"{step_dir} pads the vocabulary to {saved} rows, which model_parallel_size {tensor_parallel} does not "
            f"divide; choose a model_parallel_size that divides {saved}"
        )
    logger.info(
        "keeping the %d vocabulary rows of %s (model_parallel_size %d alone would pad to %d)",
        saved,
        step_dir,
        tensor_parallel,
        computed,
    )
    return saved

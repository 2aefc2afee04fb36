"""A checkpoint of one parallel layout -> the same step as a checkpoint of another (TP, PP, DP sizes), offline.

The same conversion as the trainer's when `load` holds a checkpoint of another layout (`training/layout_change.py`):
every rank of a gloo group of the target layout on CPU builds the engine from the checkpoint's own config with
the new sizes, fills its shard from the layout-neutral form and saves. The train batch size stays the same (the
gradient accumulation steps follow from it and the new data-parallel size), so the run continues the same batches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..config import ConfigError

# Computed from the launcher settings, never set: dropped from the saved config and derived again. Gradient
# accumulation follows from the global batch, which a layout change keeps.
DERIVED_ON_RESOLVE = ("world_size", "data_parallel_size", "warmup_iters", "gradient_accumulation_steps")


def target_config(step_dir: str, tp: int, pp: int, dp: int, save_dir: str):
    """The checkpoint's config with the new layout, resolved for its world size."""
    from ..config import NeoXArgs
    from ..config.args import DERIVED_KEYS
    from ..training.checkpoint import CONFIG_FILE
    from ..training.neutral_checkpoint import resolved_checkpoint_config

    values = {
        key: value
        for key, value in resolved_checkpoint_config(step_dir).to_dict().items()
        if key not in DERIVED_KEYS and key not in DERIVED_ON_RESOLVE
    }
    values.update(model_parallel_size=tp, pipe_parallel_size=pp, save=save_dir, load=save_dir)
    source = os.path.join(step_dir, CONFIG_FILE)
    args = NeoXArgs.from_flat(values, {key: source for key in values})
    world_size = tp * max(pp, 1) * dp
    args.resolve(world_size)
    if args.derived.data_parallel_size != dp:
        raise ConfigError(
            f"{tp} x {max(pp, 1)} x {dp} ranks give data-parallel size {args.derived.data_parallel_size}",
            source,
            "model_parallel_size",
        )
    return args


@dataclass(frozen=True)
class ConversionPlan:
    """What every rank of the target layout needs: the resolved target config, the source step, the vocab rows."""

    config: dict
    step_dir: str
    padded_vocab: int

    @property
    def world_size(self) -> int:
        return self.config["world_size"]


def plan(load_dir: str, save_dir: str, tp: int, pp: int, dp: int, iteration: int | None = None) -> ConversionPlan:
    """Step `iteration` (default: the one a resume would load) of `load_dir`, to be written into `save_dir` in
    the layout (tp, pp, dp)."""
    from ..shape import padded_vocab_size
    from ..training.checkpoint import read_marker
    from ..training.checkpoint_files import find_step_dir
    from ..training.layout_change import padded_vocab_for_resume

    step_dir = find_step_dir(load_dir, iteration)
    if os.path.abspath(save_dir) == os.path.abspath(load_dir):
        raise ConfigError(f"--save {save_dir} is the --load folder; write the conversion to another folder")
    args = target_config(step_dir, tp, pp, dp, os.path.abspath(save_dir))
    record = read_marker(step_dir).get("tokenizer") or {}
    if "padded_vocab_size" not in record:
        raise ConfigError(
            f"{step_dir}/complete.json records no tokenizer (a checkpoint of an older version); resume "
            f"it once in its own layout and convert the checkpoint that run saves"
        )
    computed = padded_vocab_size(record["vocab_size"], args.model.make_vocab_size_divisible_by, tp)
    padded_vocab = padded_vocab_for_resume(step_dir, record["vocab_size"], computed, tp)
    return ConversionPlan(args.to_dict(), step_dir, padded_vocab)


def convert_rank(conversion: ConversionPlan) -> str:
    """Collective, on every rank of a process group of the target's size: build the engine and write the step."""
    from .. import parallel
    from ..config import NeoXArgs
    from ..training import checkpoint, layout_change
    from ..training.engine import build_model, initialize_engine
    from ..training.neutral_checkpoint import NeutralCheckpoint, layout_of

    args = NeoXArgs.from_dict(conversion.config)
    layout = parallel.initialize(args.parallel.model_parallel_size, args.parallel.pipeline_stages, backend="gloo")
    engine = initialize_engine(args, build_model(args, layout, conversion.padded_vocab))
    tokenizer = checkpoint.read_marker(conversion.step_dir).get("tokenizer")
    return layout_change.convert_into(
        engine, NeutralCheckpoint(conversion.step_dir), layout_of(args), args.checkpoint.save, args.to_yaml(), tokenizer
    )


def _convert_worker(rank: int, world_size: int, conversion: ConversionPlan):
    from .. import parallel

    try:
        convert_rank(conversion)
    finally:
        parallel.destroy()


def convert(load_dir: str, save_dir: str, tp: int, pp: int, dp: int, iteration: int | None = None) -> str:
    """Write step `iteration` of `load_dir` into `save_dir` in the layout (tp, pp, dp), in as many processes on
    CPU; returns the new step folder."""
    from .. import parallel

    conversion = plan(load_dir, save_dir, tp, pp, dp, iteration)
    os.makedirs(save_dir, exist_ok=True)
    parallel.run_cpu_ranks(_convert_worker, conversion.world_size, conversion)
    return os.path.join(save_dir, os.path.basename(conversion.step_dir))

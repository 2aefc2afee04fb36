"""NeoXArgs: the whole configuration as typed sections, built from flat NeoX-style keys and validated once.

Validation runs in the order types -> values -> derived values, so that each check can rely on the ones
before it: a value check never sees a string where it expects a number, and a derived value is computed from
values that are already in range.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..shape import ModelShape
from .checkpoint import CheckpointConfig
from .data import DataConfig
from .derived import DerivedConfig, batch_sizes, check_world_size_matches, data_parallel_size
from .errors import ConfigError, did_you_mean
from .evaluation import EvaluationConfig
from .fields import check_type, require
from .launcher import LauncherConfig
from .loader import config_file_paths, merge_config_files, normalize_key
from .logging import LoggingConfig
from .metala import MetaLAConfig
from .model import ModelConfig, expand_attention_config
from .neox_compat import CONSTRAINED_NEOX_KEYS, IGNORED_NEOX_KEYS, is_accepted_value, unsupported_message
from .optimizer import OptimizerConfig
from .parallel import ParallelConfig
from .training import TrainingConfig

logger = logging.getLogger("neox_metala.config")

SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "parallel": ParallelConfig,
    "optimizer": OptimizerConfig,
    "training": TrainingConfig,
    "data": DataConfig,
    "checkpoint": CheckpointConfig,
    "logging": LoggingConfig,
    "evaluation": EvaluationConfig,
    "launcher": LauncherConfig,
    "metala": MetaLAConfig,
    "derived": DerivedConfig,
}
KEY_TO_SECTION: dict[str, str] = {}
for _section_name, _section_class in SECTIONS.items():
    for _key in _section_class.field_names():
        assert _key not in KEY_TO_SECTION, f"config key {_key} is declared in two sections"
        KEY_TO_SECTION[_key] = _section_name
DERIVED_KEYS = frozenset(DerivedConfig.field_names())
# The keys `NeoXArgs.model_shape` reads that fix a saved tensor's shape or tensor-parallel shard: a checkpoint
# records them (its neox_config.yml) and loads only into a run where they are equal (training/checkpoint.py).
# Keys that fix the shapes of the saved tensors: a checkpoint only loads into the same model. Its layout (TP, PP,
# DP sizes) may differ: the trainer converts it (training/layout_change.py).
SHAPE_KEYS = (
    "num_layers",
    "hidden_size",
    "num_attention_heads",
    "intermediate_size",
    "attention_config",
    "no_weight_tying",
    "norm",
    "metala_conv_kernel_size",
    "metala_self_augmentation",
    "metala_short_conv",
)
DICT_SOURCE = "<resolved config>"


@dataclass
class NeoXArgs:
    """All settings of a run. Read as args.model.hidden_size, args.parallel.model_parallel_size, ..."""

    model: ModelConfig = field(default_factory=ModelConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    data: DataConfig = field(default_factory=DataConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    launcher: LauncherConfig = field(default_factory=LauncherConfig)
    metala: MetaLAConfig = field(default_factory=MetaLAConfig)
    derived: DerivedConfig = field(default_factory=DerivedConfig)
    sources: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    """Key -> the file it was set in, for error messages; keys left at their default have no entry."""

    # ---- construction -------------------------------------------------------------------------------------

    @classmethod
    def from_flat(cls, values: dict[str, Any], sources: dict[str, str], allow_derived: bool = False) -> NeoXArgs:
        """Build and validate (types, values, static derived values) from flat NeoX keys."""
        args = cls(sources=dict(sources))
        ignored: list[str] = []
        for raw_key, value in values.items():
            key = normalize_key(str(raw_key))
            source = sources.get(key)
            if key in KEY_TO_SECTION:
                if key in DERIVED_KEYS and not allow_derived:
                    raise ConfigError(f"'{key}' is computed from the launcher settings; remove it", source, key)
                section = getattr(args, KEY_TO_SECTION[key])
                setattr(section, key, check_type(type(section), key, value, source))
            elif key in IGNORED_NEOX_KEYS:
                ignored.append(key)
            elif key in CONSTRAINED_NEOX_KEYS:
                if not is_accepted_value(key, value):
                    raise ConfigError(unsupported_message(key, value), source, key)
                ignored.append(key)
            else:
                raise ConfigError(f"unknown key '{key}'{did_you_mean(key, KEY_TO_SECTION)}", source, key)
        if ignored:
            logger.warning(
                "ignoring GPT-NeoX keys that have no effect in neox-metala: %s",
                ", ".join(f"{key} ({sources.get(key, DICT_SOURCE)})" for key in ignored),
            )
        args.validate()
        return args

    @classmethod
    def from_dict(cls, flat: dict[str, Any], sources: dict[str, str] | None = None) -> NeoXArgs:
        """Inverse of to_dict(): how train.py receives the config deepy.py resolved, with the file each key came
        from (`sources`; other keys are reported as DICT_SOURCE). Validates again, and re-checks the derived
        values when the dict carries a world size."""
        flat = {normalize_key(str(key)): value for key, value in flat.items()}
        args = cls.from_flat(flat, {key: DICT_SOURCE for key in flat} | (sources or {}), allow_derived=True)
        if args.derived.world_size is not None:
            carried = dataclasses.asdict(args.derived)
            args.resolve(args.derived.world_size)
            if dataclasses.asdict(args.derived) != carried:
                raise ConfigError(
                    f"derived values {carried} do not match the ones recomputed from the config "
                    f"({dataclasses.asdict(args.derived)})",
                    DICT_SOURCE,
                )
        return args

    # ---- validation ---------------------------------------------------------------------------------------

    def source_of(self, key: str) -> str | None:
        return self.sources.get(key)

    def validate(self) -> None:
        """Stage two (each section's values, then the checks that span sections) and stage three (the derived
        values that do not need the world size)."""
        for name in SECTIONS:
            getattr(self, name).check_values(self.source_of)
        require(
            self.model.num_attention_heads % self.parallel.model_parallel_size == 0,
            f"num_attention_heads ({self.model.num_attention_heads}) is not divisible by model_parallel_size "
            f"({self.parallel.model_parallel_size})",
            "model_parallel_size",
            self.source_of,
        )
        for section in (self.model, self.optimizer, self.training, self.launcher):
            section.derive(self.source_of)
        require(
            self.model.num_layers >= self.parallel.pipeline_stages,
            f"num_layers ({self.model.num_layers}) is smaller than pipe_parallel_size "
            f"({self.parallel.pipe_parallel_size}); every stage needs a layer",
            "pipe_parallel_size",
            self.source_of,
        )
        if self.optimizer.lr_decay_iters is None:
            self.optimizer.lr_decay_iters = self.training.train_iters

    def resolve(self, world_size: int) -> NeoXArgs:
        """Compute the values that depend on the number of processes; returns self for chaining."""
        try:
            dp = data_parallel_size(world_size, self.parallel.model_parallel_size, self.parallel.pipe_parallel_size)
        except ValueError as error:
            raise ConfigError(str(error), self.source_of("model_parallel_size"), "model_parallel_size") from None
        training = self.training
        try:
            (
                training.train_micro_batch_size_per_gpu,
                training.gradient_accumulation_steps,
                training.train_batch_size,
            ) = batch_sizes(
                training.train_micro_batch_size_per_gpu,
                training.gradient_accumulation_steps,
                training.train_batch_size,
                dp,
            )
        except ValueError as error:
            batch_key = "train_batch_size" if self.source_of("train_batch_size") else "train_micro_batch_size_per_gpu"
            raise ConfigError(str(error), self.source_of(batch_key), batch_key) from None
        self.derived.world_size = world_size
        self.derived.data_parallel_size = dp
        self.derived.warmup_iters = int(self.optimizer.warmup * self.optimizer.lr_decay_iters)
        return self

    def model_shape(self, padded_vocab_size: int) -> ModelShape:
        """The model these settings build, with the embedding's (padded) vocabulary size."""
        model = self.model
        return ModelShape(
            num_layers=model.num_layers,
            hidden_size=model.hidden_size,
            num_attention_heads=model.num_attention_heads,
            vocab_size=padded_vocab_size,
            seq_length=model.seq_length,
            intermediate_size=model.intermediate_size,
            layer_types=tuple(layer_types(self)),
            tied_embeddings=not model.no_weight_tying,
            norm=model.norm,
            metala=self.metala.options(),
        )

    def check_world_size(self, actual_world_size: int) -> None:
        """Raise when train.py runs with a different process count than deepy.py resolved for."""
        check_world_size_matches(self.derived.world_size, actual_world_size, DICT_SOURCE)

    # ---- serialisation ------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Flat NeoX-named keys -> JSON-serialisable values (every key, defaults and derived values included)."""
        flat: dict[str, Any] = {}
        for name in SECTIONS:
            flat.update(dataclasses.asdict(getattr(self, name)))
        return json.loads(json.dumps(flat))  # deep copy, and proof that it is JSON-serialisable

    def to_yaml(self) -> str:
        """The resolved config for humans: flat keys (loadable again), grouped under one comment per section."""
        blocks = []
        for name in SECTIONS:
            lines = [_yaml_line(key, value) for key, value in dataclasses.asdict(getattr(self, name)).items()]
            if name == "derived":  # computed, not settable: shown commented out so that the file loads again
                lines = [f"# {line}" for line in lines]
            blocks.append(f"# --- {name} ---\n" + "\n".join(lines) + "\n")
        return "\n".join(blocks)


def _yaml_line(key: str, value: Any) -> str:
    """`key: value` on one line, lists and mappings in flow style ([[[metala], 24]])."""
    return yaml.safe_dump({key: value}, default_flow_style=True, width=1 << 20).strip()[1:-1]


def layer_types(args: NeoXArgs) -> list[str]:
    """The expanded attention_config: one of "metala" / "attention" per layer, in order."""
    return expand_attention_config(args.model.attention_config)


def load_config(paths: list[str], config_dir: str | None = None) -> NeoXArgs:
    """Read, merge (as a union) and validate NeoX-style YAML files; `config_dir` is deepy's `-d DIR`.

    The result is not yet resolved for a world size: call .resolve(world_size) once the launcher is known.
    """
    if not paths:
        raise ConfigError("no config files given; e.g. -d configs metala-1B.yml local_setup.yml")
    values, sources = merge_config_files(config_file_paths(paths, config_dir))
    return NeoXArgs.from_flat(values, sources)

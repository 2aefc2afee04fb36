"""neox-metala's configuration: GPT-NeoX's flat YAML keys, read into typed sections and validated once.

    args = load_config(["metala-1B.yml", "local_setup.yml"], config_dir="configs").resolve(world_size=8)
    args.model.hidden_size, args.parallel.model_parallel_size, args.derived.data_parallel_size

train.py gets the same object, resolved by deepy.py, from neox_metala.launch.train_args.parse_train_args().
This package only reads and validates; launching is neox_metala.launch.
"""

from ..shape import padded_vocab_size
from .args import KEY_TO_SECTION, SECTIONS, SHAPE_KEYS, NeoXArgs, layer_types, load_config
from .checkpoint import CheckpointConfig
from .data import DataConfig, split_fractions
from .data_check import check_data_paths
from .derived import DerivedConfig
from .errors import ConfigError
from .evaluation import EvaluationConfig
from .launcher import LauncherConfig
from .logging import LoggingConfig
from .metala import MetaLAConfig
from .model import ModelConfig, default_intermediate_size, expand_attention_config
from .optimizer import OptimizerConfig
from .parallel import ParallelConfig
from .training import TrainingConfig

__all__ = [
    "KEY_TO_SECTION",
    "SECTIONS",
    "SHAPE_KEYS",
    "CheckpointConfig",
    "ConfigError",
    "DataConfig",
    "DerivedConfig",
    "EvaluationConfig",
    "LauncherConfig",
    "LoggingConfig",
    "MetaLAConfig",
    "ModelConfig",
    "NeoXArgs",
    "OptimizerConfig",
    "ParallelConfig",
    "TrainingConfig",
    "check_data_paths",
    "default_intermediate_size",
    "expand_attention_config",
    "layer_types",
    "load_config",
    "padded_vocab_size",
    "split_fractions",
]

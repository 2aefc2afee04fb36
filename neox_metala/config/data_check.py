"""Filesystem checks of a config, separate from validation because they depend on the machine they run on
(train.py calls them on the nodes that will read the data; deepy.py may run where the data is not mounted)."""

from __future__ import annotations

import os

from .args import NeoXArgs
from .errors import ConfigError


def check_data_paths(args: NeoXArgs) -> None:
    """Every dataset prefix has PREFIX.bin and PREFIX.idx, and the tokenizer files exist."""
    data = args.data
    prefixes = data.data_prefixes()
    if not prefixes:
        raise ConfigError("no training data: set data_path (with split) or train_data_paths", None, "data_path")
    for key, prefix in prefixes:
        missing = [prefix + suffix for suffix in (".bin", ".idx") if not os.path.isfile(prefix + suffix)]
        if missing:
            raise ConfigError(
                f"{key}: dataset prefix {prefix!r} has no {' and no '.join(missing)}; give the prefix without "
                f".bin/.idx, or tokenize the data first (neox-metala-prep)", args.source_of(key), key)
    if data.vocab_file is None:
        raise ConfigError(f"vocab_file is required for tokenizer_type {data.tokenizer_type!r}", None, "vocab_file")
    for key in ("vocab_file", "merge_file"):
        path = getattr(data, key)
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"{key}: file {path!r} does not exist", args.source_of(key), key)

"""Checks of a run's inputs and outputs that need no GPU, run before any GPU work so that a mistake costs seconds:

* `check_data_settings` — the config alone (some training data, validation/test data only beside training data,
  a vocab file named); deepy.py runs it too, --dry-run included.
* `check_data_paths` — the filesystem, on the nodes that read the data (deepy.py may run where it is not
  mounted): every shard's .bin/.idx exist and agree in size (the cheap part of `data_prep validate`: the
  header and the last index entry, not the whole index), the tokenizer files exist.
* `check_save_writable` — `save` can take files (a probe file written and removed), instead of failing at the
  first checkpoint, hours in.
"""

from __future__ import annotations

import os

from .args import NeoXArgs
from .errors import ConfigError


def check_data_settings(args: NeoXArgs) -> None:
    data = args.data
    if not data.data_path and not data.train_data_paths:
        given = [key for key in ("valid_data_paths", "test_data_paths") if getattr(data, key)]
        where = f" ({', '.join(f'{key} from {args.source_of(key)}' for key in given)} without it)" if given else ""
        raise ConfigError(
            f"no training data{where}: set data_path (with split) or train_data_paths",
            args.source_of(given[0]) if given else None,
            given[0] if given else "data_path",
        )
    if data.vocab_file is None:
        raise ConfigError(
            f"vocab_file is required for tokenizer_type {data.tokenizer_type!r}",
            args.source_of("tokenizer_type"),
            "vocab_file",
        )


def check_data_paths(args: NeoXArgs) -> None:
    """Every dataset prefix has PREFIX.bin and PREFIX.idx that agree, and the tokenizer files exist."""
    check_data_settings(args)
    data = args.data
    for key, prefix in data.data_prefixes():
        missing = [prefix + suffix for suffix in (".bin", ".idx") if not os.path.isfile(prefix + suffix)]
        if missing:
            raise ConfigError(
                f"{key}: dataset prefix {prefix!r} has no {' and no '.join(missing)}; give the prefix without "
                f".bin/.idx, or tokenize the data first (neox-metala-prep)",
                args.source_of(key),
                key,
            )
        problem = shard_size_problem(prefix)
        if problem:
            raise ConfigError(
                f"{key}: {problem}; the shard is damaged (an interrupted copy?): copy or tokenize "
                f"it again (python -m neox_metala.data_prep validate --prefix {prefix} checks all of "
                f"it)",
                args.source_of(key),
                key,
            )
    for key in ("vocab_file", "merge_file"):
        path = getattr(data, key)
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"{key}: file {path!r} does not exist", args.source_of(key), key)


def shard_size_problem(prefix: str) -> str | None:
    """What is wrong with a shard's .idx or with its .bin's size, reading the index header and its last entry."""
    from ..data_prep.indexed import read_index

    try:
        index = read_index(prefix)  # checks the header and that the .idx holds every entry it announces
    except (OSError, ValueError) as error:
        return str(error)
    lengths, pointers = index["lengths"], index["pointers"]
    expected = int(pointers[-1]) + int(lengths[-1]) * index["dtype"].itemsize if lengths.size else 0
    actual = os.path.getsize(prefix + ".bin")
    if actual != expected:
        return f"{prefix}.bin has {actual:,} bytes but {prefix}.idx describes {expected:,}"
    return None


def check_save_writable(args: NeoXArgs, rank: int) -> None:
    save = args.checkpoint.save
    if not save:
        return
    probe = os.path.join(save, f".write-probe-rank{rank}")
    try:
        os.makedirs(save, exist_ok=True)
        with open(probe, "w") as f:
            f.write("probe")
        os.remove(probe)
    except OSError as error:
        raise ConfigError(
            f"save: cannot write checkpoints to {save!r} ({error.strerror or error}); point save at a writable folder",
            args.source_of("save"),
            "save",
        ) from None

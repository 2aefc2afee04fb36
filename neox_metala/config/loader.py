"""Reading NeoX-style YAML files: one flat mapping per file, merged as a union, dashes == underscores."""

from __future__ import annotations

import os
from typing import Any

import yaml

from .errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML silently keeps the last)."""


def _construct_mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    loader.flatten_mapping(node)
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise ConfigError(
                f"key {key!r} appears twice (second time on line {line}); keep one", key_node.start_mark.name, str(key)
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping_without_duplicates)


def normalize_key(key: str) -> str:
    """NeoX accepts both `train-iters` and `train_iters`; the underscore form is canonical."""
    return key.replace("-", "_")


def config_file_paths(paths: list[str], config_dir: str | None) -> list[str]:
    """`-d DIR a.yml b.yml` means DIR/a.yml DIR/b.yml; absolute paths are kept as they are."""
    if not config_dir:
        return list(paths)
    return [path if os.path.isabs(path) else os.path.join(config_dir, path) for path in paths]


def read_config_file(path: str) -> dict[str, Any]:
    """One YAML (or JSON, which YAML reads too) file as a flat mapping with normalized keys."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}; check the name and the -d directory", path)
    with open(path, encoding="utf-8") as stream:
        try:
            loaded = yaml.load(stream, Loader=_StrictLoader)
        except yaml.YAMLError as error:
            where = getattr(error, "problem_mark", None)
            line = f" at line {where.line + 1}" if where else ""
            problem = getattr(error, "problem", None) or str(error)
            raise ConfigError(f"not valid YAML{line}: {problem}", path) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"expected a mapping of key: value at the top level, got a {type(loaded).__name__}", path)
    flat: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for raw_key, value in loaded.items():
        key = normalize_key(str(raw_key))
        if key in flat:
            raise ConfigError(f"key '{key}' is given twice, as '{spelled[key]}' and '{raw_key}'; keep one", path, key)
        flat[key], spelled[key] = value, str(raw_key)
    return flat


def merge_config_files(paths: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Union of the files' keys, as GPT-NeoX merges them: a key set in two files is an error, not an override.

    Returns the merged values and, for each key, the file it came from.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for path in paths:
        for key, value in read_config_file(path).items():
            if key in values:
                raise ConfigError(
                    f"key '{key}' is set in both {sources[key]} and {path}; keep it in one file", path, key
                )
            values[key] = value
            sources[key] = path
    return values, sources

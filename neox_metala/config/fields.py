"""Stage one of validation: every value has the type its section dataclass declares.

The section dataclasses are the single source of truth: their annotations (``int``, ``float | None``,
``Literal[...]``, ``list[str] | None``, ``dict | None``) are read here, so adding a key is adding a field.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable
from typing import Any, Literal

from .errors import ConfigError, choices_text, did_you_mean

# Where a key came from ("configs/tiny.yml"), for error messages; None when it has no recorded source.
SourceOf = Callable[[str], "str | None"]


class Section:
    """Base of the section dataclasses: they list their keys and check their own values (stage two)."""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def check_values(self, source_of: SourceOf) -> None:
        """Raise ConfigError when a well-typed value is out of range; sections override this."""


@functools.cache
def type_hints(section_class: type) -> dict[str, Any]:
    return typing.get_type_hints(section_class)


def _type_name(annotation: Any) -> str:
    names = {
        int: "an integer",
        float: "a number",
        bool: "true or false",
        str: "a string",
        dict: "a mapping",
        list: "a list",
        type(None): "null",
    }
    if annotation in names:
        return names[annotation]
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + choices_text(typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation)
        return f"a list of {_type_name(item).removeprefix('an ').removeprefix('a ')}s"
    if origin is dict:
        return "a mapping"
    return str(annotation)


def _number_from_string(value: str) -> float | None:
    # PyYAML reads `1e-5` (no dot) as a string, as YAML 1.1 says; users mean a number.
    try:
        return float(value)
    except ValueError:
        return None


class _Mismatch(Exception):
    pass


def _coerce_scalar(value: Any, annotation: Any) -> Any:
    if annotation is Any:
        return value
    if annotation is bool and isinstance(value, bool):
        return value
    if annotation is int:
        number = _number_from_string(value) if isinstance(value, str) else value
        if isinstance(number, (int, float)) and not isinstance(number, bool) and float(number).is_integer():
            return int(number)
    if annotation is float:
        number = _number_from_string(value) if isinstance(value, str) else value
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            return float(number)
    if annotation is str and isinstance(value, str):
        return value
    if annotation is type(None) and value is None:
        return None
    if annotation in (dict, list) and isinstance(value, annotation):
        return value
    raise _Mismatch


def coerce(value: Any, annotation: Any) -> Any:
    """Return ``value`` converted to ``annotation`` (int 3 -> 3.0 for a float), or raise _Mismatch."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        # type() too, so that true does not pass for 1 nor 1 for true.
        if any(value == choice and type(value) is type(choice) for choice in typing.get_args(annotation)):
            return value
        raise _Mismatch
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return coerce(value, option)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        (item_type,) = typing.get_args(annotation)
        return [coerce(item, item_type) for item in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise _Mismatch
        return value
    return _coerce_scalar(value, annotation)


def check_type(section_class: type, key: str, value: Any, source: str | None) -> Any:
    """Stage one for one key: return the value in its declared type or raise a one-line ConfigError."""
    annotation = type_hints(section_class)[key]
    try:
        return coerce(value, annotation)
    except _Mismatch:
        pass
    literal_choices = _literal_choices(annotation)
    if literal_choices and isinstance(value, str):
        raise ConfigError(
            f"{key}: {value!r} is not one of {choices_text(literal_choices)}"
            f"{did_you_mean(value, [c for c in literal_choices if isinstance(c, str)])}",
            source,
            key,
        )
    raise ConfigError(f"{key}: expected {_type_name(annotation)}, got {value!r} ({type(value).__name__})", source, key)


def _literal_choices(annotation: Any) -> tuple:
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            if typing.get_origin(option) is Literal:
                return typing.get_args(option)
    return ()


def require(condition: bool, message: str, key: str, source_of: SourceOf) -> None:
    """Stage two helper: raise a ConfigError about ``key`` (prefixed by its file) unless ``condition``."""
    if not condition:
        raise ConfigError(message, source_of(key), key)

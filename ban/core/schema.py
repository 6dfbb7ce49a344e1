"""Turn nested mappings from YAML into typed dataclasses, with one-line errors.

Each error names the full dotted key (``train.batch_size``) and, for unknown
keys, suggests the nearest known one: the message is the whole user interface
of a typo in ``params.yaml`` and in every other YAML file the project reads.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ban.core.errors import ConfigError

T = TypeVar("T")


def read_yaml(path: Path) -> Any:
    """The data of YAML file ``path``; a missing file or a syntax error is a one-line ConfigError."""
    if not path.exists():
        raise ConfigError(f"{path}: file not found (run from the project root)")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: YAML syntax error{where}: {problem}") from None


def load_yaml(hint: Any, path: Path) -> Any:
    """YAML file ``path`` as the typed value ``hint`` (a dataclass, or a dict or list of them); each error
    names the file and the dotted key."""
    try:
        return convert(hint, read_yaml(path), "")
    except ConfigError as error:
        message = str(error)
        raise ConfigError(message if message.startswith(f"{path}: ") else f"{path}: {message}") from None


def parse(cls: type[T], raw: Any, key: str) -> T:
    """Build dataclass ``cls`` from mapping ``raw``; missing fields take their defaults."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key + ': ' if key else ''}expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for name in raw:
        if name not in fields:
            raise ConfigError(f"{_join(key, str(name))}: unknown key{_suggestion(str(name), fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, field in fields.items():
        if name in raw:
            values[name] = convert(hints[name], raw[name], _join(key, name))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_join(key, name)}: required key is missing")
    return cls(**values)


def convert(hint: Any, value: Any, key: str) -> Any:
    """Check ``value`` against the type ``hint``; ints are accepted where floats are."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return convert(option, value, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0])
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {_describe(value)}")
        return [convert(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(hint)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {_describe(value)}")
        return {str(k): convert(item, v, _join(key, str(k))) for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return parse(hint, value, key)
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise ConfigError(f"{key}: expected {hint.__name__}, got {_describe(value)}")
    return value


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _suggestion(name: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(known)}"

"""Registries of extensions: each entry lives in its own module of one package and registers itself.

Adding an objective, a dataset, a task, a network family, a schedule or a training domain means adding one
module to its package; nothing else names it. The package's modules are imported the first time
the registry is read, so a module may import the registry it registers into without a cycle.

``ban.training.closure`` knows this convention: code that creates ``Registry(kind, "some.package")``
depends on every module of that package.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from ban.core.errors import ConfigError


class Named(Protocol):
    @property
    def name(self) -> str: ...


Entry = TypeVar("Entry", bound=Named)


class Registry(Generic[Entry]):
    """Entries by name; ``kind`` names them in error messages ("objective", "dataset", ...)."""

    def __init__(self, kind: str, package: str) -> None:
        self.kind, self.package = kind, package
        self._entries: dict[str, Entry] = {}
        self._loaded = False

    def register(self, entry: Entry) -> Entry:
        if entry.name in self._entries and self._entries[entry.name] is not entry:
            raise ValueError(f"{self.kind} {entry.name!r} is registered twice")
        self._entries[entry.name] = entry
        return entry

    def get(self, name: str, key: str) -> Entry:
        """The entry ``name``; ``key`` is where params.yaml names it, for the one-line error."""
        self._load()
        if name not in self._entries:
            raise ConfigError(f"{key}: unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries[name] for name in self.names())

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def _load(self) -> None:
        """Import every module of the package once, so that each can register its entries."""
        if self._loaded:
            return
        self._loaded = True
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{self.package}.{module.name}")

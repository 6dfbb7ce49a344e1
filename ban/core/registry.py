"""Registries of extensions: each entry lives in its own module of one package and registers itself.

Adding an objective, a dataset, a task, a network family, a schedule or a training domain means adding one
module to its package; nothing else names it. The package's modules are imported the first time
the registry is read, so a module may import the registry it registers into without a cycle.

A registry whose entries params.yaml names (``by_name=True``: networks, objectives, datasets, schedules)
imports only the module of the entry asked for: the module named like the entry (``kd.mode: ban`` is
``ban/objectives/ban.py``), else every module of the package until the entry is found. So a stage's code
is the modules its params select, and :meth:`Registry.module_of` says which (``ban.training.sources``
records them per stage, and ``dvc.yaml`` makes each stage depend on that record).

``ban.training.closure`` knows this convention: code that creates ``Registry(kind, "some.package")``
depends on every module of that package; with ``by_name=True``, on the selected ones only.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from ban.core.errors import ConfigError


class Named(Protocol):
    @property
    def name(self) -> str: ...


Entry = TypeVar("Entry", bound=Named)


class Registry(Generic[Entry]):
    """Entries by name; ``kind`` names them in error messages ("objective", "dataset", ...)."""

    def __init__(self, kind: str, package: str, *, by_name: bool = False) -> None:
        self.kind, self.package, self.by_name = kind, package, by_name
        self._entries: dict[str, Entry] = {}
        self._modules: dict[str, str] = {}  # entry name -> the module that registered it
        self._loaded = False

    def register(self, entry: Entry) -> Entry:
        if entry.name in self._entries and self._entries[entry.name] is not entry:
            raise ValueError(f"{self.kind} {entry.name!r} is registered twice")
        self._entries[entry.name] = entry
        self._modules[entry.name] = self._registering_module()
        return entry

    def get(self, name: str, key: str) -> Entry:
        """The entry ``name``; ``key`` is where params.yaml names it, for the one-line error."""
        self._find(name)
        if name not in self._entries:
            raise ConfigError(f"{key}: unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        return self._entries[name]

    def module_of(self, name: str, key: str) -> str:
        """The module that registered entry ``name`` (``ban.objectives.ban``)."""
        self.get(name, key)
        return self._modules[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries[name] for name in self.names())

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self._find(name)
        return name in self._entries

    def _find(self, name: str) -> None:
        """Import what defines ``name``: its own module when it has one and the registry is read by name."""
        if name in self._entries:
            return
        own = f"{self.package}.{name}"
        if self.by_name and name.isidentifier() and importlib.util.find_spec(own) is not None:
            importlib.import_module(own)
            if name in self._entries:
                return
        self._load()

    def _load(self) -> None:
        """Import every module of the package once, so that each can register its entries."""
        if self._loaded:
            return
        self._loaded = True
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{self.package}.{module.name}")

    def _registering_module(self) -> str:
        """The module whose code registers an entry: the first caller outside this file and outside the
        package's ``__init__`` (where helpers such as a ``@register`` decorator live)."""
        frame = sys._getframe(2)
        while frame is not None and frame.f_globals.get("__name__") in (__name__, self.package):
            frame = frame.f_back
        return frame.f_globals.get("__name__", "") if frame is not None else ""

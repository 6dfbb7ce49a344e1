"""Registry of network architectures, each tagged with the task it solves.

Image builders take ``in_channels`` and ``num_classes``; language-model builders
take ``vocab_size`` (and ``word_chars`` for character-aware models).  Everything
else a builder takes is an architecture option given in ``params.yaml``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from ban.errors import ConfigError

DATA_ARGUMENTS = {"in_channels", "num_classes", "vocab_size", "word_chars"}


@dataclass(frozen=True)
class Architecture:
    name: str
    task: str  # "image" or "lm"
    builder: Callable[..., nn.Module]

    def option_names(self) -> set[str]:
        """Options a user may set: the builder's keyword arguments minus the data ones."""
        parameters = inspect.signature(self.builder).parameters
        return set(parameters) - DATA_ARGUMENTS


ARCHITECTURES: dict[str, Architecture] = {}


def register(name: str, task: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator adding a builder to the registry under ``name``."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        ARCHITECTURES[name] = Architecture(name, task, builder)
        return builder

    return decorate


def get_architecture(name: str, key: str = "model") -> Architecture:
    """The registered architecture ``name``; ``key`` is where params.yaml names it, for the error."""
    _load_families()
    if name not in ARCHITECTURES:
        valid = ", ".join(sorted(ARCHITECTURES))
        raise ConfigError(f"{key}.arch: unknown architecture {name!r}; valid: {valid}")
    return ARCHITECTURES[name]


def check_options(name: str, options: Mapping[str, Any], key: str = "model") -> None:
    """Reject options the architecture does not take, naming the valid ones."""
    known = get_architecture(name).option_names()
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(
            f"{key}.{unknown[0]}: not an option of {name!r}; valid: {', '.join(sorted(known))}"
        )


def build_model(name: str, options: Mapping[str, Any], **data_arguments: Any) -> nn.Module:
    """Build architecture ``name`` with user ``options`` for the given data."""
    check_options(name, options)
    architecture = get_architecture(name)
    accepted = inspect.signature(architecture.builder).parameters
    data = {k: v for k, v in data_arguments.items() if k in accepted}
    return architecture.builder(**data, **options)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _load_families() -> None:
    """Import every family module so that its ``@register`` calls run."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")

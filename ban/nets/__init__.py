"""Registry of network architectures (``model.arch``), each tagged with the task it solves.

Each module of this package registers one family with ``@register``. Image builders take
``in_channels`` and ``num_classes``; language-model builders take ``vocab_size`` (and
``word_chars`` for character-aware models). Everything else a builder takes is an
architecture option given in ``params.yaml``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from ban.core.errors import ConfigError
from ban.core.registry import Registry

DATA_ARGUMENTS = {"in_channels", "num_classes", "vocab_size", "word_chars"}


@dataclass(frozen=True)
class Architecture:
    name: str
    task: str  # a name in ban.tasks
    builder: Callable[..., nn.Module]

    def option_names(self) -> set[str]:
        """Options a user may set: the builder's keyword arguments minus the data ones."""
        parameters = inspect.signature(self.builder).parameters
        return set(parameters) - DATA_ARGUMENTS


ARCHITECTURES: Registry[Architecture] = Registry("architecture", "ban.nets")


def register(name: str, task: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator adding a builder to the registry under ``name``."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        ARCHITECTURES.register(Architecture(name, task, builder))
        return builder

    return decorate


def get_architecture(name: str, key: str = "model") -> Architecture:
    """The registered architecture ``name``; ``key`` is where params.yaml names it, for the error."""
    return ARCHITECTURES.get(name, f"{key}.arch")


def check_options(name: str, options: Mapping[str, Any], key: str = "model") -> None:
    """Reject options the architecture does not take, naming the valid ones."""
    known = get_architecture(name, key).option_names()
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

"""Network architectures (``model.arch``): registered names, or any callable by import path.

Each module of this package registers one family with ``@register``. Image builders take
``in_channels`` and ``num_classes`` (and ``image_size`` if they name it); language-model builders take
``vocab_size`` (and ``word_chars`` for character-aware models). Everything else a builder takes is an
architecture option given in ``params.yaml``. A name of the form ``package.module:callable``
(``torchvision.models:resnet18``) is a builder under the same contract: a language model when its
signature names ``vocab_size``, an image classifier otherwise (docs/networks.md).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ban.core.errors import ConfigError
from ban.core.imports import import_callable, is_import_path
from ban.core.registry import Registry

DATA_ARGUMENTS = {"in_channels", "num_classes", "image_size", "vocab_size", "word_chars"}


@dataclass(frozen=True)
class Architecture:
    name: str
    task: str  # a name in ban.tasks
    builder: Callable[..., nn.Module]

    def option_names(self) -> set[str] | None:
        """Options a user may set: the builder's keyword arguments minus the data ones; None when it takes
        any (``**kwargs``, as torchvision's builders do)."""
        parameters = inspect.signature(self.builder).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return None
        return set(parameters) - DATA_ARGUMENTS

    def data_arguments(self, offered: Mapping[str, Any]) -> dict[str, Any]:
        """What the builder takes of ``offered``: ``num_classes`` always, the others when it names them."""
        named = inspect.signature(self.builder).parameters
        return {k: v for k, v in offered.items() if k in named or k == "num_classes" and self.task == "image"}


ARCHITECTURES: Registry[Architecture] = Registry("architecture", "ban.nets", by_name=True)


def register(name: str, task: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator adding a builder to the registry under ``name``."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        ARCHITECTURES.register(Architecture(name, task, builder))
        return builder

    return decorate


def get_architecture(name: str, key: str = "model") -> Architecture:
    """The architecture ``name`` (registered, or an import path); ``key`` is where params.yaml names it."""
    if is_import_path(name):
        builder = import_callable(name, f"{key}.arch")
        try:
            parameters = inspect.signature(builder).parameters
        except (TypeError, ValueError):  # a builtin without a signature: it takes the data arguments by name
            parameters = {}
        return Architecture(name, "lm" if "vocab_size" in parameters else "image", builder)
    return ARCHITECTURES.get(name, f"{key}.arch")


def check_options(name: str, options: Mapping[str, Any], key: str = "model") -> None:
    """Reject options the architecture does not take, naming the valid ones."""
    known = get_architecture(name, key).option_names()
    unknown = sorted(set(options) - known) if known is not None else []
    if unknown:
        options_key = f"{key}.options" if key == "teacher" else key
        raise ConfigError(f"{options_key}.{unknown[0]}: not an option of {name!r}; "
                          f"valid: {', '.join(sorted(known or [])) or 'none'}")


def build_model(name: str, options: Mapping[str, Any], key: str = "model",
                **data_arguments: Any) -> nn.Module:
    """Build architecture ``name`` with user ``options`` for the given data; a builder that refuses its
    arguments or returns no network is a one-line error naming ``key.arch``."""
    check_options(name, options, key)
    architecture = get_architecture(name, key)
    if not is_import_path(name):
        return architecture.builder(**architecture.data_arguments(data_arguments), **options)
    try:
        model = architecture.builder(**architecture.data_arguments(data_arguments), **options)
    except TypeError as error:  # options (or data arguments) it does not take
        raise ConfigError(f"{key}.arch: {name!r} refused its arguments ({error})") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{key}.arch: {name!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def check_output(model: nn.Module, name: str, key: str, example: torch.Tensor, num_classes: int) -> None:
    """The network maps a batch to ``batch x num_classes`` logits; else one line naming ``key.arch``."""
    was_training = model.training
    try:
        with torch.no_grad():
            output = model.eval()(example)
    except Exception as error:  # the user's forward: any failure is an answer about its input
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(f"{key}.arch: {name!r} fails on a batch of shape {list(example.shape)} ({first})") \
            from None
    finally:
        model.train(was_training)
    expected = [len(example), num_classes]
    shape = list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
    if shape != expected:
        raise ConfigError(f"{key}.arch: {name!r} maps a batch of shape {list(example.shape)} to {shape}; "
                          f"expected {expected} (batch x num_classes)")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

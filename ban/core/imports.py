"""Callables named by import path, ``package.module:callable``, as params.yaml may name a network.

A path names either a module of the project (a user's own file, which the stages that import it depend
on) or a module of an installed package (pinned by that package's version). Every failure is one line
naming the params key.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ban.core.errors import ConfigError

PROJECT = Path(__file__).resolve().parents[2]


def is_import_path(name: str) -> bool:
    """``package.module:callable`` rather than a registered name."""
    return ":" in name


def import_callable(path: str, key: str) -> Callable[..., Any]:
    """The callable ``path`` names; ``key`` is where params.yaml names it, for the error."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute or ":" in attribute:
        raise ConfigError(f"{key}: {path!r} is not an import path `package.module:callable`")
    if str(PROJECT) not in sys.path:
        sys.path.append(str(PROJECT))  # the project's own modules, also when run from another directory
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # a missing module, or one that fails as it runs: the user's code either way
        raise ConfigError(f"{key}: cannot import {module_name!r} ({type(error).__name__}: {error})") from None
    found = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise ConfigError(f"{key}: module {module_name!r} has no {attribute!r}")
        found = getattr(found, part)
    if not callable(found):
        raise ConfigError(f"{key}: {path!r} is not callable")
    return found


def installed_package(module: str) -> str | None:
    """The installed distribution that provides ``module``, pinned (``torchvision==0.21.0``); None for a
    module of no distribution (the standard library, the project's own files)."""
    distributions = importlib.metadata.packages_distributions().get(module.split(".")[0], [])
    if not distributions:
        return None
    return f"{distributions[0]}=={importlib.metadata.version(distributions[0])}"

"""Errors a user can act on: stages print them as one line instead of a traceback.

The library's core needs torch, torchvision, numpy, pyyaml and pillow; a feature that needs more raises
:class:`MissingExtra`, naming the extra of ``born-again-networks`` that installs it.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from types import ModuleType

DISTRIBUTION = "born-again-networks"


class BanError(Exception):
    """A problem with the user's input or files; the message says what to do.

    ``exit_code`` follows the convention of command-line tools: 2 for bad
    configuration or usage, 1 for a failure while running.
    """

    exit_code = 1


class ConfigError(BanError):
    """Invalid params: the message names the offending key."""

    exit_code = 2


class DataError(BanError):
    """Missing, unreadable or inconsistent data files."""


class CheckpointError(BanError):
    """A missing, corrupt or mismatched checkpoint."""


class TrainingError(BanError):
    """Training cannot go on (for example a non-finite loss)."""


class MissingExtra(BanError, ImportError):
    """An optional dependency is not installed; the message says which extra brings it."""


def missing_extra(extra: str, modules: Iterable[str], purpose: str) -> MissingExtra:
    return MissingExtra(f"{purpose} needs {', '.join(modules)}, which the extra {extra!r} installs: "
                        f"pip install '{DISTRIBUTION}[{extra}]'")


def require_extra(extra: str, modules: Iterable[str], purpose: str) -> None:
    """Fail with :class:`MissingExtra` unless every top-level module of ``modules`` is installed (found,
    not imported: the check costs no import time)."""
    absent = [name for name in modules if importlib.util.find_spec(name) is None]
    if absent:
        raise missing_extra(extra, absent, purpose)


def import_optional(module: str, extra: str, purpose: str) -> ModuleType:
    """``module``, imported where it is used; :class:`MissingExtra` naming ``extra`` if its package is not
    installed (an import error from inside an installed package is left as it is)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        package = module.split(".")[0]
        if error.name != package:  # the package is there, something inside it is not
            raise
        raise missing_extra(extra, [package], purpose) from None

"""Born-Again Networks: born-again distillation of image classifiers and language models."""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

DISTRIBUTION = "born-again-networks"


def _version() -> str:
    """The installed distribution's version; in a source checkout that is not installed, its
    ``pyproject.toml``'s; ``0+unknown`` when neither says (a copy of the package alone)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            project = tomllib.loads(pyproject.read_text()).get("project", {})
        except (OSError, tomllib.TOMLDecodeError):
            return "0+unknown"
        return str(project["version"]) if project.get("name") == DISTRIBUTION else "0+unknown"


__version__ = _version()

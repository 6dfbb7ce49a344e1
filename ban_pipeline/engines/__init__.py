"""The internals of DVC and Ray that the pipeline calls, one module per engine (``dvc_private``,
``ray_private``): outside their public APIs, they change without notice between releases. Each module
checks the installed version on first use and refuses, in one line, one outside the range it was
written against (the same range as the extra in pyproject.toml)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from packaging.specifiers import SpecifierSet

from ban.core.errors import BanError


class UnsupportedVersion(BanError):
    """The installed DVC or Ray is outside the range whose internals the pipeline knows."""


def check_version(distribution: str, supported: str) -> None:
    """Raise :class:`UnsupportedVersion` unless ``distribution``'s installed version is in ``supported``."""
    try:
        installed = version(distribution)
    except PackageNotFoundError:
        installed = "none"
    if installed == "none" or installed not in SpecifierSet(supported, prereleases=True):
        raise UnsupportedVersion(f"{distribution} {installed} is installed; the pipeline knows the internals "
                                 f"of {distribution}{supported}: pip install '{distribution}{supported}'")

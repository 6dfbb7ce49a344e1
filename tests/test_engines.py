"""DVC's and Ray's internals are called through one module per engine, which refuses, in one line, an
installed version outside the range it knows; the range is the one pyproject.toml declares."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from project import ROOT

from ban_pipeline.engines import dvc_private, ray_private

EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]

# One call of each module's internals, as a stage would make it; an error is printed as its one line.
CALLS = {
    "dvc": "from ban_pipeline.engines import dvc_private as engine; print(engine.path_overrides(['seed=1']))",
    "ray": "from ban_pipeline.engines import ray_private as engine; print(engine.token_mode())",
}
CALLER = """
import sys
from ban.core.errors import BanError
try:
    {call}
except BanError as error:
    print(error)
    sys.exit(1)
"""


def declared(extra: str, name: str) -> str:
    return str(next(Requirement(r) for r in EXTRAS[extra] if Requirement(r).name == name).specifier)


def test_each_engine_module_knows_the_range_that_pyproject_declares() -> None:
    assert str(Requirement(f"dvc{dvc_private.SUPPORTED}").specifier) == declared("pipeline", "dvc")
    assert str(Requirement(f"ray{ray_private.SUPPORTED}").specifier) == declared("cluster", "ray")


def installed_as(directory: Path, distribution: str, version: str) -> dict[str, str]:
    """An environment in which ``distribution``'s metadata says ``version`` (a dist-info directory ahead
    of the real one on the path), the package itself unchanged."""
    info = directory / f"{distribution}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n")
    return {"PYTHONPATH": f"{directory}:{ROOT}", "PATH": "/usr/bin:/bin"}


@pytest.mark.parametrize(("distribution", "version", "supported"),
                         [("dvc", "4.0.0", ">=3.50,<4"), ("dvc", "3.49.0", ">=3.50,<4"),
                          ("ray", "3.0.0", ">=2.60,<3"), ("ray", "2.59.1", ">=2.60,<3")])
def test_an_unknown_version_is_refused_in_one_line_on_first_use(tmp_path: Path, distribution: str,
                                                                version: str, supported: str) -> None:
    run = subprocess.run([sys.executable, "-c", CALLER.format(call=CALLS[distribution])], capture_output=True,
                         text=True, env=installed_as(tmp_path, distribution, version), cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stdout == (f"{distribution} {version} is installed; the pipeline knows the internals of "
                          f"{distribution}{supported}: pip install '{distribution}{supported}'\n")


def test_the_installed_versions_are_accepted() -> None:
    run = subprocess.run([sys.executable, "-c", CALLER.format(call=CALLS["dvc"])], capture_output=True,
                         text=True, cwd=ROOT, check=True)
    assert run.stdout == "{'params.yaml': ['seed=1']}\n"

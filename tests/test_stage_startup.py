"""A stage's start-up: ``python -m stages.X`` imports with the garbage collector off; the stage's ``main``
runs with it on and the start-up's objects frozen out of it. A program that imports ``stages`` itself
keeps its collector as it was."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from project import ROOT, environment

pytestmark = pytest.mark.slow  # processes that import torch

PROBE = """
import gc

import torch  # a start-up import, as a stage's

COLLECTING_AT_IMPORT = gc.isenabled()

from stages.cli import {entry}


def main(argv: list[str]) -> None:
    print(COLLECTING_AT_IMPORT, gc.isenabled(), gc.get_freeze_count() > 100_000, gc.get_threshold()[2],
          torch.__name__)


if __name__ == "__main__":
    {entry}(main)
"""


def probe(tmp_path: Path, entry: str) -> list[str]:
    """What a stage module of the test's own (``stages.probe``, in a copy of the package) saw, run as
    ``python -m stages.probe``."""
    package = tmp_path / "stages"
    shutil.copytree(ROOT / "stages", package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "probe.py").write_text(textwrap.dedent(PROBE.format(entry=entry)))
    env = dict(environment(), PYTHONPATH=str(ROOT))  # the copy in the working folder comes first
    result = subprocess.run([sys.executable, "-m", "stages.probe"], cwd=tmp_path, capture_output=True,
                            text=True, env=env, check=True)
    return result.stdout.split()


def test_a_stage_process_imports_without_collecting_and_runs_with_its_start_up_frozen(tmp_path: Path) -> None:
    """Full collections a hundred times rarer than Python's default (every 10 collections of the middle
    generation), since it keeps few objects after start-up."""
    assert probe(tmp_path, "run_process") == ["False", "True", "True", "1000", "torch"]


def test_a_command_imports_without_collecting_and_runs_collecting(tmp_path: Path) -> None:
    """``stages.cli.run`` (the launcher, the tables): on again, nothing frozen (it may run for hours)."""
    assert probe(tmp_path, "run") == ["False", "True", "False", "10", "torch"]


def test_importing_stages_in_a_program_leaves_its_collector_on() -> None:
    code = "import gc, stages.cli; print(gc.isenabled())"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            check=True, env=environment())
    assert result.stdout.split() == ["True"]

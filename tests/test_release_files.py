"""What a user needs to reuse and cite the project: the licence, the citation file (CFF 1.2), the
changelog, and ``ban.__version__``, all agreeing with the version ``pyproject.toml`` declares."""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from project import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CFF_REQUIRED = ("cff-version", "message", "title", "authors")  # the Citation File Format 1.2 schema's
REFERENCE_REQUIRED = ("type", "title", "authors")


def version_in(python_path: str, cwd: Path) -> str:
    """``ban.__version__`` in a fresh interpreter that finds ``ban`` in this checkout."""
    env = dict(os.environ, PYTHONPATH=python_path)
    result = subprocess.run([sys.executable, "-c", "import ban; print(ban.__version__)"], cwd=cwd, env=env,
                            capture_output=True, text=True, check=True)
    return result.stdout.strip()


def test_the_licence_is_the_full_apache_2_text_and_the_package_declares_it() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply the Apache License" in text
    assert PROJECT["license"] == "Apache-2.0" and PROJECT["license-files"] == ["LICENSE"]


def test_the_citation_file_is_cff_1_2_and_cites_the_paper() -> None:
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert [key for key in CFF_REQUIRED if key not in citation] == []
    assert citation["cff-version"] == "1.2.0"
    assert all("name" in author or "family-names" in author for author in citation["authors"])
    assert citation["version"] == PROJECT["version"] and citation["license"] == PROJECT["license"]
    datetime.date.fromisoformat(citation["date-released"])
    for reference in citation["references"]:
        assert [key for key in REFERENCE_REQUIRED if key not in reference] == []
    paper = citation["references"][0]
    assert paper["title"] == "Born-Again Neural Networks" and paper["year"] == 2018
    assert paper["authors"][0]["family-names"] == "Furlanello"
    assert (paper["volume"], paper["start"], paper["end"]) == (80, 1607, 1616)


def test_the_changelog_starts_with_this_version() -> None:
    entries = re.findall(r"^## \[([^\]]+)\] - (\d{4}-\d{2}-\d{2})$", (ROOT / "CHANGELOG.md").read_text(),
                         re.MULTILINE)
    assert entries and entries[0][0] == PROJECT["version"]


def test_a_source_checkout_reports_the_version_of_its_pyproject(tmp_path: Path) -> None:
    assert version_in(str(ROOT), tmp_path) == PROJECT["version"]


def test_an_installed_distribution_reports_the_version_of_its_metadata(tmp_path: Path) -> None:
    """A real ``*.dist-info`` (as pip writes) of another version than the checkout: the metadata wins."""
    info = tmp_path / "born_again_networks-7.7.7.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: born-again-networks\nVersion: 7.7.7\n")
    assert version_in(os.pathsep.join([str(ROOT), str(tmp_path)]), tmp_path) == "7.7.7"

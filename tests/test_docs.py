"""The documentation: a README a newcomer reads in minutes, and the ``docs/`` site, which builds with
``mkdocs build --strict`` (a broken link, a missing anchor or a page left out of the nav fails)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from project import ROOT

README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#([^)\s]+))?\)")


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)]
    quiet = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # the theme's notice about its successor
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=quiet)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    built = build(ROOT / "mkdocs.yml", folder)
    assert built.returncode == 0, built.stderr
    return folder


def test_the_readme_is_short_and_holds_the_results_table_with_its_seeds() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 300
    marker = "<!-- {} generated cifar10-32-crops-study-table -->"
    table = text.split(marker.format("BEGIN"))[1].split(marker.format("END"))[0]
    assert "| gen3 | " in table and " (5) |" in table and "seeds 0, 1, 2, 3 and 4" in text


@pytest.mark.slow  # a process: the site's build
def test_every_page_of_the_nav_is_built(site: Path) -> None:
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    pages = [page for entry in nav for page in entry.values()]
    assert sorted(pages) == sorted(path.name for path in (ROOT / "docs").glob("*.md"))
    for page in pages:
        built = site / ("index.html" if page == "index.md" else f"{page.removesuffix('.md')}/index.html")
        assert built.is_file(), page
    assert (site / "figures/regimes.png").read_bytes()[:4] == b"\x89PNG"  # the figures come along


@pytest.mark.slow
def test_the_readme_links_to_pages_and_anchors_that_exist(site: Path) -> None:
    """The README is not part of the site, so its links are checked against the built pages here."""
    links = [(target, anchor) for target, anchor in LINK.findall(README.read_text())
             if not target.startswith("http")]
    assert len(links) > 10
    for target, anchor in links:
        assert (ROOT / target).exists(), target
        if anchor:
            page = Path(target).relative_to("docs").with_suffix("")
            assert f'id="{anchor}"' in (site / page / "index.html").read_text(), f"{target}#{anchor}"


@pytest.mark.slow
def test_a_broken_anchor_fails_the_build(tmp_path: Path) -> None:
    docs = shutil.copytree(ROOT / "docs", tmp_path / "docs")  # the figures' links become files
    with (docs / "method.md").open("a") as page:
        page.write("\nSee [the queue](pipeline.md#no-such-section).\n")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump({**config, "docs_dir": str(docs)}))
    built = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert built.returncode == 1
    assert "'pipeline.md#no-such-section'" in built.stderr and "does not contain an anchor" in built.stderr

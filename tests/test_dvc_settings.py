"""A repository's DVC remotes and cache, read and written in this process as DVC's own commands read and
write them (the launcher and the gate would otherwise start a DVC process for each)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from project import environment, run

from ban_pipeline.engines.dvc_private import configure_clone, storage

pytestmark = pytest.mark.slow  # DVC's commands as processes, to compare with

LONG_URL = "s3://a-rather-long-bucket-name-for-experiments/projects/born-again/dvc-store"


def repository(directory: Path) -> Path:
    directory.mkdir(parents=True)
    run(directory, "git", "init", "-q")
    run(directory, "dvc", "init", "-q")
    return directory


def printed(project: Path, *arguments: str) -> str:
    """What ``dvc arguments`` prints, on a terminal wide enough for a line per remote (DVC wraps its lines
    at the terminal's width, 80 columns when it has none)."""
    result = subprocess.run(["dvc", *arguments], cwd=project, env=dict(environment(), COLUMNS="500"),
                            capture_output=True, text=True, check=True)
    return result.stdout


def test_remotes_and_cache_are_what_dvc_prints(tmp_path: Path) -> None:
    """Remotes of the repository and local levels, relative paths among them, a URL longer than the 80
    columns DVC wraps its lines at without a terminal, a default and a cache."""
    project = repository(tmp_path / "project")
    bare = storage(project)
    assert (bare.remotes, bare.default_remote) == ({}, None)
    assert bare.cache_dir == printed(project, "cache", "dir").strip()
    run(project, "dvc", "remote", "add", "-d", "shared", "../store")
    run(project, "dvc", "remote", "add", "bucket", LONG_URL)
    run(project, "dvc", "remote", "add", "--local", "mine", "../mine")
    run(project, "dvc", "cache", "dir", "--local", "../cache")
    listed = {line.split()[0]: line.split()[1] for line in printed(project, "remote", "list").splitlines()}
    found = storage(project)
    assert found.remotes == listed == {"shared": str(tmp_path / "store"), "bucket": LONG_URL,
                                       "mine": str(tmp_path / "mine")}
    assert found.default_remote == printed(project, "remote", "default").strip() == "shared"
    assert found.cache_dir == printed(project, "cache", "dir").strip() == str(tmp_path / "cache")


@pytest.mark.parametrize("remote", [True, False])
def test_a_clones_settings_are_the_files_dvcs_commands_write(tmp_path: Path, remote: bool) -> None:
    by_commands, by_call = repository(tmp_path / "commands"), repository(tmp_path / "call")
    cache = str(tmp_path / "cache")
    if remote:
        run(by_commands, "dvc", "remote", "add", "--local", "--default", "--force", "study", "/srv/dvc")
        configure_clone(by_call, None, ("study", "/srv/dvc"))
    else:
        run(by_commands, "dvc", "cache", "dir", "--local", cache)
        configure_clone(by_call, cache, None)
    written = [(directory / ".dvc" / "config.local").read_text() for directory in (by_commands, by_call)]
    assert written[0] == written[1]
    read = [storage(directory) for directory in (by_commands, by_call)]
    assert read[0].remotes == read[1].remotes and read[0].default_remote == read[1].default_remote
    assert read[1].cache_dir == (cache if not remote else str(by_call / ".dvc" / "cache"))

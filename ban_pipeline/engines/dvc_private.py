"""DVC's internals that the pipeline calls, and nothing else calls: params overrides and sweeps as
``dvc exp run -S`` applies them (``dvc.utils``), a repository's stages (``Repo.index``), its run-cache
(``Repo.stage_cache``) and its remotes and cache (``dvc.config``). The first call checks the installed DVC
against :data:`SUPPORTED`."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ban_pipeline.engines import check_version

SUPPORTED = ">=3.50,<4"  # the extra `pipeline`'s range in pyproject.toml


@functools.cache
def checked() -> None:
    check_version("dvc", SUPPORTED)


def apply_overrides(params_file: Path, overrides: list[str]) -> None:
    """Rewrite ``params_file`` with ``-S`` overrides, as ``dvc exp run -S`` does (raises DvcException)."""
    checked()
    from dvc.utils.hydra import apply_overrides as apply

    apply(params_file, overrides)


def path_overrides(overrides: list[str]) -> dict[str, list[str]]:
    """``-S`` overrides grouped by the params file they name, as ``dvc exp run`` groups them."""
    checked()
    from dvc.utils.cli_parse import to_path_overrides

    return to_path_overrides(overrides)


def hydra_sweeps(by_file: dict[str, list[str]]) -> list[dict[str, list[str]]]:
    """Every combination of the sweep overrides (``range(...)``, ``a,b``), as ``dvc exp run --queue``."""
    checked()
    from dvc.utils.hydra import get_hydra_sweeps

    return get_hydra_sweeps(by_file)


@contextmanager
def repository(root: Path | str) -> Iterator[Any]:
    """DVC's ``Repo`` at ``root``, closed on exit."""
    checked()
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        yield repo


@dataclass(frozen=True)
class Storage:
    """What ``dvc remote list``, ``dvc remote default`` and ``dvc cache dir`` print for a repository."""

    remotes: dict[str, str]  # name -> URL; a local path is absolute, resolved from the file that names it
    default_remote: str | None
    cache_dir: str


def storage(root: Path) -> Storage:
    """The repository's remotes and cache, read as those three commands read them (every config level
    merged), without a DVC process each."""
    checked()
    from dvc.config import Config

    config = Config(dvc_dir=str(Path(root).resolve() / ".dvc"), validate=False)
    merged = config.read()
    remotes = {name: str(remote["url"]) for name, remote in merged.get("remote", {}).items()}
    cache_dir = merged.get("cache", {}).get("dir") or os.path.join(config.dvc_dir, "cache")
    return Storage(remotes, merged.get("core", {}).get("remote"), str(cache_dir))


def configure_clone(root: Path, cache_dir: str | None, remote: tuple[str, str] | None) -> None:
    """The edits of ``dvc cache dir --local DIR`` and ``dvc remote add --local --default --force NAME URL``
    to ``root``'s ``.dvc/config.local``, as those commands make them, without a DVC process each."""
    checked()
    from dvc.config import Config

    with Config(dvc_dir=str(Path(root) / ".dvc")).edit("local") as local:
        if cache_dir:
            local["cache"]["dir"] = cache_dir
        if remote:
            name, url = remote
            local["remote"][name] = {"url": url}
            local["core"]["remote"] = name


def pipeline_stages(repo: Any) -> list[Any]:
    """Every stage of the repository's ``dvc.yaml`` (``foreach`` expanded)."""
    return list(repo.index.stages)


def stage_params(stage: Any) -> dict[str, Any]:
    """The values of the params keys ``stage`` depends on, by key."""
    from dvc.dependency.param import ParamsDependency

    return {key: value for dep in stage.deps if isinstance(dep, ParamsDependency)
            for key, value in sorted(dep.read_params().items())}


def stage_paths(stage: Any) -> list[str]:
    """The paths ``stage`` depends on, as ``dvc.yaml`` writes them (its params aside)."""
    from dvc.dependency.param import ParamsDependency

    return [dep.def_path for dep in stage.deps if not isinstance(dep, ParamsDependency)]


def pull_run_cache(repo: Any) -> list[Any]:
    """The remote's run-cache entries, fetched (not the outputs they name)."""
    return repo.stage_cache.pull(None)


def run_cache_entries(repo: Any) -> list[tuple[str, str]]:
    """The (stage key, entry) pairs of the local run-cache."""
    runs = Path(repo.stage_cache.cache_dir)
    return [(entry.parent.name, entry.name) for entry in runs.glob("*/*/*")] if runs.exists() else []


def push_run_cache(repo: Any, entries: list[tuple[str, str]]) -> int:
    """The outputs that ``entries`` point to, then every run-cache entry: in this order a cancelled push
    leaves no entry without its files. Returns the number of objects pushed."""
    objects = [obj for objs in repo.stage_cache.get_used_objs(entries).values() for obj in objs]
    repo.cloud.push(objects)
    repo.stage_cache.push(None)
    return len(objects)

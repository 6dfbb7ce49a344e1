"""A study's settings from the repository it is launched in: the commit, where workers clone it from and
push to, how they share outputs (a DVC remote, or this host's cache), and where jobs keep their files."""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ban.core.errors import ConfigError
from ban_pipeline.engines import dvc_private
from ban_pipeline.processes import git

REMOTE_TIMEOUT_S = 120  # a git remote that does not answer (a host down, a prompt for credentials)


@dataclass(frozen=True)
class Settings:
    """What every job of a study needs to know; the same on every host."""

    git_remote: str  # where the commit is cloned from and experiments are pushed to
    commit: str
    work_root: str  # each job's clone goes in a folder of its own under it
    log_dir: str
    dvc_remote: str | None = None  # remote mode: a DVC remote URL or path
    shared_cache: str | None = None  # shared-cache mode: the cache every clone uses
    state_dir: str | None = None  # BAN_STATE_DIR for the train stages: where retries find their state
    shared_stages: tuple[str, ...] = ()  # stages the study runs once, as dvc.yaml names them
    cpus: int = 1
    gpu_ids: tuple[str, ...] = ()
    node: str = ""  # the Ray node the job runs on (several may share a host)


@dataclass(frozen=True)
class Request:
    """What the user asked for (the launcher's options); None: the default."""

    name: str
    address: str | None  # the Ray cluster, None for a local instance
    git_remote: str | None = None
    dvc_remote: str | None = None
    state_dir: str | None = None
    work_dir: str | None = None
    cpus: int = 1


def study_settings(root: Path, request: Request) -> Settings:
    commit = git(root, "rev-parse", "HEAD")
    if git(root, "status", "--porcelain", "--untracked-files=no"):
        print(f"warning: uncommitted changes are not part of the study; it runs commit {commit[:12]}",
              file=sys.stderr)
    configured = dvc_private.storage(root)
    dvc_remote = shared_outputs(configured, request)
    work_root = Path(request.work_dir or Path(tempfile.gettempdir()) / "ban-study") / request.name
    shared_cache = None if dvc_remote else configured.cache_dir
    state_dir = Path(request.state_dir).resolve() if request.state_dir else work_root / "state"
    return Settings(git_remote=_absolute(git_source(root, request)), commit=commit, work_root=str(work_root),
                    log_dir=str(work_root / "logs"),
                    dvc_remote=dvc_remote, shared_cache=shared_cache, state_dir=str(state_dir),
                    cpus=request.cpus)


def git_source(root: Path, request: Request) -> str:
    """The git remote's URL (``--git-remote``, else origin), else this repository (one host only)."""
    remotes = git(root, "remote").split()
    git_remote = request.git_remote or ("origin" if "origin" in remotes else str(root))
    return git(root, "remote", "get-url", git_remote) if git_remote in remotes else git_remote


def shared_outputs(configured: dvc_private.Storage, request: Request) -> str | None:
    """The DVC remote's URL or path (``--dvc-remote``, else the default remote); None: this host's cache,
    which only a study on one host can share."""
    dvc_remote = request.dvc_remote or configured.default_remote
    if dvc_remote is None and request.address:
        raise ConfigError("--dvc-remote: workers on other hosts share outputs through a DVC remote; give one "
                          "(any remote DVC supports, e.g. s3://bucket/path or a shared folder)")
    if dvc_remote in configured.remotes:
        return configured.remotes[dvc_remote]
    if dvc_remote and "://" not in dvc_remote:
        return str(Path(dvc_remote).resolve())
    return dvc_remote


def committed_params(root: Path, params: str | None, option: str = "--params") -> str | None:
    """A params file relative to the repository, once it is known to be committed."""
    if not params:
        return None
    path = str(Path(params).resolve().relative_to(root.resolve()))
    if not git(root, "ls-files", path):
        raise ConfigError(f"{option}: {params} is not a file committed in this repository")
    return path


def pushed_experiments(root: Path, settings: Settings) -> set[str]:
    """Names of the experiments of the study's commit in the git remote: those a relaunched study (same
    ``--name``) finished before, and pushed only once they had succeeded."""
    refs = git(root, "ls-remote", settings.git_remote, "refs/exps/*", timeout_s=REMOTE_TIMEOUT_S).splitlines()
    baseline = f"refs/exps/{settings.commit[:2]}/{settings.commit[2:]}/"
    return {ref.split("\t")[1][len(baseline):] for ref in refs if ref.split("\t")[1].startswith(baseline)}


def _absolute(location: str) -> str:
    return location if "://" in location or ":" in location.split("/")[0] else str(Path(location).resolve())

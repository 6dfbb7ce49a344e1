"""One job of a study, run where Ray placed it: a fresh clone, the DVC commands, the exchange of results.

Every job clones the study's commit from the git remote into a folder of its own (DVC's repository
lock forbids two runs in one workspace), so a job behaves the same on the driver's host or on any
other. Outputs travel through DVC: in *remote* mode each clone keeps its own cache and takes the
shared stages from the DVC remote (``--run-cache``), as on another host; in *shared-cache* mode (one
host) every clone uses the repository's cache directly. Results go back as DVC experiments pushed
to the git remote. Nothing is pushed unless the run succeeded, outputs before the run-cache entries
that point to them, so a cancelled job leaves nothing half-written in the remotes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ban.core.paths import PARAMS, SUMMARY
from ban_pipeline.engines import dvc_private
from ban_pipeline.launch.plan import Job
from ban_pipeline.launch.settings import Settings
from ban_pipeline.processes import dvc_command, stop_leftovers, streamed

KILLED = re.compile(r"exited with (-\d+|13[07]|143)\b")  # a signal, or the exit code a shell gives it
ERROR_LINE = re.compile(r"^(?:error|ERROR): (.*)$")


@dataclass
class JobResult:
    name: str
    overrides: tuple[str, ...]
    ok: bool
    seconds: float = 0.0
    error: str = ""  # one line
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # metrics/summary.json
    host: str = ""
    stage: str | None = None


class StageKilled(RuntimeError):
    """A stage process died from a signal (pre-emption, OOM killer, SIGKILL): worth retrying."""


def run_job(job: Job, settings: Settings, upstream: list[JobResult],
            on_line: Callable[[str], None] | None = None) -> JobResult:
    """Run ``job`` after the jobs it needs; a failure is a result, a killed stage an exception;
    ``on_line`` sees every line its commands print."""
    started = time.monotonic()
    result = JobResult(job.name, job.overrides, ok=False, host=socket.gethostname(), stage=job.stage)
    failed = [done for done in upstream if not done.ok]
    if failed:
        result.error = f"not run: shared stage {failed[0].stage} failed ({failed[0].error})"
        return result
    workdir = Path(settings.work_root) / job.name
    log_path = Path(settings.log_dir) / f"{job.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        node = f", Ray node {settings.node}" if settings.node else ""
        log.write(f"=== {job.name} on {result.host}{node}, {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        log.flush()
        runner = Runner(workdir, log, environment(settings), on_line)
        try:
            clone(runner, settings)
            run_commands(runner, job, settings)
            if job.is_experiment:
                result.metrics = json.loads((workdir / SUMMARY).read_text())
        except CommandFailed as failure:
            if KILLED.search(failure.output):
                raise StageKilled(f"{job.name}: {failure.line}") from None
            result.error = failure.line
            result.seconds = time.monotonic() - started
            return result
    shutil.rmtree(workdir, ignore_errors=True)
    result.ok, result.seconds = True, time.monotonic() - started
    return result


def clone(runner: Runner, settings: Settings) -> None:
    """A fresh clone of the study's commit, with the cache and remote of the study's mode."""
    stop_leftovers(runner.workdir)
    shutil.rmtree(runner.workdir, ignore_errors=True)
    runner.workdir.parent.mkdir(parents=True, exist_ok=True)
    runner.run("git", "clone", "--quiet", "--no-checkout", settings.git_remote, str(runner.workdir), cwd=None)
    try:
        runner.run("git", "checkout", "--quiet", settings.commit)
    except CommandFailed:
        raise CommandFailed(f"commit {settings.commit[:12]} is not in {settings.git_remote}: push it there "
                            "first", "") from None
    remote = ("study", settings.dvc_remote) if settings.dvc_remote else None
    dvc_private.configure_clone(runner.workdir, settings.shared_cache, remote)
    runner.log.write(f"DVC's local config: remote {settings.dvc_remote}\n" if remote
                     else f"DVC's local config: cache {settings.shared_cache}\n")


def run_commands(runner: Runner, job: Job, settings: Settings) -> None:
    remote = settings.shared_cache is None
    pull = ["--pull"] if remote else []  # a stage restored from the run-cache fetches its outputs
    if remote:
        fetch_run_cache(runner)
    if job.params_file:
        shutil.copy(runner.workdir / job.params_file, runner.workdir / PARAMS)
    forget_locked(runner, settings.shared_stages)
    if job.is_experiment:
        sets = [argument for override in job.overrides for argument in ("--set-param", override)]
        runner.dvc("exp", "run", *pull, "--name", job.name, *sets)
    else:
        dvc_private.apply_overrides(runner.workdir / PARAMS, list(job.overrides))
        runner.dvc("repro", *pull, job.stage)
    if remote:
        push_run_cache(runner)
    if job.is_experiment:
        runner.dvc("exp", "push", "--no-cache", "origin", job.name)


def forget_locked(runner: Runner, stages: tuple[str, ...]) -> None:
    """Drop the committed ``dvc.lock`` entries of the study's shared stages, so that they come from the
    run-cache the shared jobs filled.

    DVC prefers a lock entry to the run-cache when a stage's params and deps equal it: it then tries
    to pull the outputs the entry names and, when those were never pushed (made on another machine),
    runs the stage again. Without the entry every job finds the shared job's result in the run-cache
    (or, the shared job itself, runs the stage), whatever the committed lock says.
    """
    lock_path = runner.workdir / "dvc.lock"
    if not stages or not lock_path.exists():
        return
    lock = yaml.safe_load(lock_path.read_text())
    dropped = [stage for stage in stages if lock.get("stages", {}).pop(stage, None) is not None]
    if dropped:
        lock_path.write_text(yaml.safe_dump(lock, sort_keys=False))
        runner.log.write(f"shared stages taken from the run-cache, not dvc.lock: {', '.join(dropped)}\n")
        runner.log.flush()


def fetch_run_cache(runner: Runner) -> None:
    """The remote's run-cache entries (not the outputs: ``--pull`` fetches those a stage restores)."""
    # DVC resolves paths from the working folder
    with contextlib.chdir(runner.workdir), dvc_private.repository(".") as repo:
        fetched = dvc_private.pull_run_cache(repo)
    runner.log.write(f"fetched {len(fetched)} run-cache entries\n")
    runner.log.flush()


def push_run_cache(runner: Runner) -> None:
    """Every output the clone's run-cache entries point to, then the entries themselves.

    ``dvc push --run-cache`` sends the entries first and leaves out the outputs a stage does not
    cache itself (its metrics and plots), which the run-cache keeps; a worker restoring the stage
    elsewhere would miss them. In this order a cancelled push leaves no entry without its files.
    """
    with contextlib.chdir(runner.workdir), dvc_private.repository(".") as repo:
        entries = dvc_private.run_cache_entries(repo)
        objects = dvc_private.push_run_cache(repo, entries)
    runner.log.write(f"pushed the outputs of {len(entries)} run-cache entries ({objects} objects)\n")
    runner.log.flush()


def environment(settings: Settings) -> dict[str, str]:
    """The job's processes: this Python first on PATH, the CPU threads and GPUs Ray gave the job, the
    shared state folder, and no DVC telemetry."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(settings.cpus),
               CUDA_VISIBLE_DEVICES=",".join(settings.gpu_ids))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if settings.state_dir:
        env["BAN_STATE_DIR"] = settings.state_dir
    for variable, value in (("GIT_AUTHOR_NAME", "ban study"), ("GIT_AUTHOR_EMAIL", "ban-study@localhost")):
        env.setdefault(variable, value)
        env.setdefault(variable.replace("AUTHOR", "COMMITTER"), value)
    return env


class CommandFailed(Exception):
    def __init__(self, line: str, output: str) -> None:
        super().__init__(line)
        self.line, self.output = line, output


class Runner:
    """Runs the job's commands in its clone, appending their output to the job's log."""

    def __init__(self, workdir: Path, log: Any, env: dict[str, str],
                 on_line: Callable[[str], None] | None = None) -> None:
        self.workdir, self.log, self.env, self.on_line = workdir, log, env, on_line

    def dvc(self, *arguments: str) -> str:
        return self.run(*dvc_command(*arguments))

    def run(self, *command: str, cwd: Path | None | str = "") -> str:
        """Run ``command`` to its end (``processes.streamed``: stopped with what it started if the job
        is cancelled), its output copied to the log as it comes."""
        self.log.write(f"$ {' '.join(command)}\n")
        self.log.flush()
        status, output = streamed(command, self.workdir if cwd == "" else cwd, self.env, self._copy)
        if status != 0:
            raise CommandFailed(error_line(output, command, status), output)
        return output

    def _copy(self, line: str) -> None:
        self.log.write(line)
        self.log.flush()
        if self.on_line:
            self.on_line(line)


def error_line(output: str, command: tuple[str, ...], status: int) -> str:
    """The stage's own one-line error if it printed one, else DVC's, else the command and its status."""
    errors = [match.group(1) for line in output.splitlines() if (match := ERROR_LINE.match(line.strip()))]
    ours = [line for line in errors if not line.startswith("failed to reproduce")]
    if ours or errors:
        return (ours or errors)[-1]
    return f"{' '.join(command[-3:])} exited with {status}"

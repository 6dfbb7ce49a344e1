"""Run a study's jobs on Ray in dependency order, retry killed ones, and report progress as they end.

Each job asks Ray for ``--cpus-per-experiment`` CPUs and ``--gpus-per-experiment`` GPUs and trains on
exactly those (``OMP_NUM_THREADS`` and ``CUDA_VISIBLE_DEVICES`` are set from Ray's assignment). A job
whose stage process is killed (node lost, pre-emption, SIGKILL) is retried by Ray; with its state
folder reachable it resumes from the last finished epoch. A failed experiment is reported with its
one-line error and the others go on. Ctrl-C cancels every job: running ones stop their stages
(SIGTERM, which saves the epoch), and nothing is pushed.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray

from ban.launch.jobs import JobResult, Settings, StageKilled, run_job
from ban.launch.plan import Job, Rejected
from ban.tasks import headline_metrics

MAX_RETRIES = 3
POLL_S = 5.0


@ray.remote(num_cpus=0)
class Progress:
    """Which jobs have started and on which host (a retry starts again), for the driver's log."""

    def __init__(self) -> None:
        self._started: dict[str, tuple[str, int]] = {}  # name -> (host, attempt)

    def start(self, name: str, host: str) -> None:
        self._started[name] = (host, self._started.get(name, ("", 0))[1] + 1)

    def started(self) -> dict[str, tuple[str, int]]:
        return self._started


@dataclass
class Resources:
    cpus: int = 1
    gpus: float = 0.0


@dataclass
class Outcome:
    results: dict[str, JobResult] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def experiments(self) -> list[JobResult]:
        return [result for result in self.results.values() if result.stage is None]

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.rejected] + [r.name for r in self.experiments if not r.ok]


def run_study(jobs: list[Job], settings: Settings, resources: Resources, say: Callable[[str], None],
              rejected: list[Rejected]) -> Outcome:
    """Submit every job to the connected Ray cluster and wait for all; ``say`` prints progress."""
    outcome = Outcome(rejected=list(rejected))
    for refused in rejected:
        say(f"FAILED {refused.name} ({' '.join(refused.overrides)}): {refused.error}")
    progress = Progress.remote()
    task = ray.remote(execute).options(num_cpus=resources.cpus, num_gpus=resources.gpus,
                                       max_retries=MAX_RETRIES, retry_exceptions=[StageKilled])
    refs: dict[Any, Job] = {}
    by_name: dict[str, Any] = {}
    for job in jobs:  # shared stages come before the experiments that need them
        ref = task.remote(job, settings, progress, *[by_name[name] for name in job.needs])
        refs[ref], by_name[job.name] = job, ref
    pending, announced = list(refs), {}
    by_job = {job.name: job for job in jobs}
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=POLL_S)
            started = ray.get(progress.started.remote())
            for name, (host, attempt) in started.items():
                if announced.get(name) != (host, attempt) and name not in outcome.results:
                    again = f" (attempt {attempt})" if attempt > 1 else ""
                    say(f"start  {name} ({describe(by_job[name])}) on {host}{again}   "
                        + counts(jobs, outcome, started))
            announced = dict(started)
            for ref in done:
                result = collect(ref, refs[ref])
                outcome.results[result.name] = result
                say(finished_line(result) + "   " + counts(jobs, outcome, started))
    except KeyboardInterrupt:
        say("cancelling the study: stopping the running jobs (their stages save the epoch they are in)")
        for ref in pending:
            ray.cancel(ref, force=False, recursive=True)
        ray.wait(pending, num_returns=len(pending), timeout=60)
        raise
    return outcome


def execute(job: Job, settings: Settings, progress: Any, *upstream: JobResult) -> JobResult:
    """The Ray task: the job on the devices Ray assigned to this worker."""
    progress.start.remote(job.name, socket.gethostname())
    gpus = tuple(str(gpu) for gpu in ray.get_gpu_ids())
    return run_job(job, Settings(**{**settings.__dict__, "gpu_ids": gpus}), list(upstream))


def collect(ref: Any, job: Job) -> JobResult:
    """A job's result; a job that Ray could not finish (retries exhausted, upstream lost) is a failure."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as error:
        cause = getattr(error, "cause", None) or error
        line = str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__
        return JobResult(job.name, job.overrides, ok=False, error=line, stage=job.stage)


def describe(job: Job | JobResult) -> str:
    return f"shared stage {job.stage}" if job.stage else " ".join(job.overrides) or "committed params"


def finished_line(result: JobResult) -> str:
    """One line per finished job: name, overrides, headline metrics (or the error), time."""
    what = describe(result)
    took = f"{result.seconds / 60:.1f} min"
    if not result.ok:
        return f"FAILED {result.name} ({what}): {result.error}  [{took}]"
    return f"done   {result.name} ({what}): {headline(result.metrics)}  [{took}, {result.host}]"


def headline(metrics: dict[str, dict[str, Any]]) -> str:
    """The headline metric of every generation and ensemble, e.g. ``test_error gen0 2.44 gen1 1.56``."""
    names = {metric for values in metrics.values() for metric in values} & set(headline_metrics())
    if not names:
        return "-"
    metric = sorted(names)[0]
    figures = " ".join(f"{name} {values[metric]:.2f}" for name, values in metrics.items() if metric in values)
    return f"{metric} {figures}"


def counts(jobs: list[Job], outcome: Outcome, started: dict[str, tuple[str, int]]) -> str:
    experiments = [job for job in jobs if job.is_experiment]
    done = sum(job.name in outcome.results for job in experiments)
    running = sum(job.name in started and job.name not in outcome.results for job in experiments)
    return f"| experiments: {done} done, {running} running, {len(experiments) - done - running} queued"

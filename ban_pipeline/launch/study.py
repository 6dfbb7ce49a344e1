"""Run a study's jobs on Ray in dependency order, retry killed ones, and report progress as they end.

Each job asks Ray for ``--cpus-per-experiment`` CPUs and ``--gpus-per-experiment`` GPUs and trains on
exactly those (``OMP_NUM_THREADS`` and ``CUDA_VISIBLE_DEVICES`` are set from Ray's assignment). A job
whose stage process is killed (node lost, pre-emption, SIGKILL) is retried by Ray; with its state
folder reachable it resumes from the last finished epoch. A failed experiment is reported with its
one-line error and the others go on. Ctrl-C cancels every job: running ones stop their stages
(SIGTERM, which saves the epoch), and nothing is pushed.
"""

from __future__ import annotations

import dataclasses
import re
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

import ban
from ban.core.config import TrainConfig
from ban.core.errors import BanError
from ban.tasks import headline_metrics
from ban_pipeline.launch.gpus import check_gpus
from ban_pipeline.launch.jobs import JobResult, StageKilled, run_job
from ban_pipeline.launch.plan import Job, Rejected
from ban_pipeline.launch.settings import Settings

# shipped to every worker (Ray's py_modules): the library and the application its jobs run
PACKAGES = (Path(ban.__file__).resolve().parent, Path(__file__).resolve().parents[1])
MAX_RETRIES = 3
POLL_S = 5.0
REPORT_EVERY_S = 600.0  # a line with the counts and the time left, between the start and done lines
SPEED_WINDOW_S = 1800.0  # the estimate's speed: epochs trained over the last half hour


EPOCH_LINE = re.compile(r"^\S+ epoch +\d+/\d+ ")  # what a train stage prints after each epoch


@ray.remote(num_cpus=0)
class StudyProgress:
    """Which jobs have started and on which host (a retry starts again), and how many epochs each has
    trained, for the driver's log."""

    def __init__(self) -> None:
        self._started: dict[str, tuple[str, int]] = {}  # name -> (host, attempt)
        self._epochs: dict[str, int] = {}

    def start(self, name: str, host: str) -> None:
        self._started[name] = (host, self._started.get(name, ("", 0))[1] + 1)

    def epoch(self, name: str) -> None:
        self._epochs[name] = self._epochs.get(name, 0) + 1

    def state(self) -> tuple[dict[str, tuple[str, int]], dict[str, int]]:
        return self._started, self._epochs


@dataclass
class Estimate:
    """The time left: the epochs the plan has left at the study's recent speed, every job together.

    The speed is measured between epoch ends over the last ``window_s`` seconds, so neither the start-up
    (clones, data, imports) nor a pause or a lost node long past weighs on it; until two epochs have
    ended, it is the epochs trained since the start."""

    jobs: list[Job]
    window_s: float = SPEED_WINDOW_S
    started: float = field(default_factory=time.monotonic)
    _seen: deque[tuple[float, int]] = field(default_factory=deque, init=False)  # (when, epochs trained)

    def observe(self, epochs: dict[str, int], now: float | None = None) -> None:
        trained, now = sum(epochs.values()), time.monotonic() if now is None else now
        if trained and (not self._seen or trained > self._seen[-1][1]):
            self._seen.append((now, trained))
        while len(self._seen) > 2 and now - self._seen[0][0] > self.window_s:
            self._seen.popleft()  # two samples stay: a speed, however old, until newer epochs give one

    def __call__(self, outcome: Outcome, epochs: dict[str, int]) -> str:
        trained = sum(epochs.values())
        if not trained:
            return ""
        if len(self._seen) >= 2:
            (first, trained_first), (last, trained_last) = self._seen[0], self._seen[-1]
            seconds_per_epoch = (last - first) / (trained_last - trained_first)
        else:
            seconds_per_epoch = (time.monotonic() - self.started) / trained
        left = sum(max(job.epochs - epochs.get(job.name, 0), 0) for job in self.jobs
                   if job.name not in outcome.results)
        time_left = duration_text(left * seconds_per_epoch)
        return f" | {trained} epochs trained, {left} to go: about {time_left} left"


def duration_text(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


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


def run_on_ray(jobs: list[Job], settings: Settings, resources: Resources, address: str | None,
               rejected: list[Rejected], trainings: dict[str, TrainConfig],
               say: Callable[[str], None]) -> Outcome:
    """Connect to the cluster at ``address`` (or start a local instance), run the study, and always
    disconnect (stopping an instance it started). Ctrl-C and SIGTERM cancel the study. ``trainings``:
    each experiment's ``train`` settings, to check its GPUs."""
    runtime_env = {"py_modules": [str(package) for package in PACKAGES],
                   "env_vars": {"DVC_NO_ANALYTICS": "1"}}
    try:
        # "local", not None: Ray would join the cluster a `ray start` on this host left in its temp folder
        ray.init(address=address or "local", runtime_env=runtime_env, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ray.exceptions.RayError) as error:
        raise BanError(f"Ray: {str(error).strip().splitlines()[0]}") from None
    for signum in (signal.SIGINT, signal.SIGTERM):  # after ray.init, which installs handlers of its own
        signal.signal(signum, _cancel)  # SIGINT too: a background start leaves it ignored
    try:
        available = ray.cluster_resources()
        say(f"Ray: {available.get('CPU', 0):g} CPUs, {available.get('GPU', 0):g} GPUs "
            f"({'joined ' + address if address else 'a local instance'})")
        for line in check_gpus(available.get("GPU", 0), resources.gpus, trainings):
            print(line, file=sys.stderr, flush=True)
        return run_study(jobs, settings, resources, say, rejected)
    finally:
        ray.shutdown()


def _cancel(signum: int, frame: object) -> None:
    """Ctrl-C or a scheduler's SIGTERM: cancel the study as a KeyboardInterrupt does."""
    raise KeyboardInterrupt


def run_study(jobs: list[Job], settings: Settings, resources: Resources, say: Callable[[str], None],
              rejected: list[Rejected]) -> Outcome:
    """Submit every job to the connected Ray cluster and wait for all; ``say`` prints progress."""
    outcome = Outcome(rejected=list(rejected))
    for refused in rejected:
        say(f"FAILED {refused.name} ({' '.join(refused.overrides)}): {refused.error}")
    here = ray.get_runtime_context().get_node_id()  # the driver's node: losing another keeps the log
    on_driver = NodeAffinitySchedulingStrategy(here, soft=False)
    progress = StudyProgress.options(scheduling_strategy=on_driver).remote()
    task = ray.remote(execute).options(num_cpus=resources.cpus, num_gpus=resources.gpus,
                                       max_retries=MAX_RETRIES, retry_exceptions=[StageKilled])
    refs: dict[Any, Job] = {}
    by_name: dict[str, Any] = {}
    for job in jobs:  # shared stages come before the experiments that need them
        ref = task.remote(job, settings, progress, *[by_name[name] for name in job.needs])
        refs[ref], by_name[job.name] = job, ref
    pending, announced = list(refs), {}
    by_job = {job.name: job for job in jobs}
    estimate, reported = Estimate(jobs), time.monotonic()
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=POLL_S)
            started, epochs = ray.get(progress.state.remote())
            estimate.observe(epochs)
            for name, (host, attempt) in started.items():
                if announced.get(name) != (host, attempt) and name not in outcome.results:
                    again = f" (attempt {attempt})" if attempt > 1 else ""
                    say(f"start  {name} ({describe(by_job[name])}) on {host}{again}   "
                        + counts(jobs, outcome, started) + estimate(outcome, epochs))
            announced = dict(started)
            for ref in done:
                result = collect(ref, refs[ref])
                outcome.results[result.name] = result
                reported = time.monotonic()
                say(f"{finished_line(result)}   {counts(jobs, outcome, started)}{estimate(outcome, epochs)}")
            if time.monotonic() - reported > REPORT_EVERY_S and (left := estimate(outcome, epochs)):
                reported = time.monotonic()  # a long job: say how the study goes between its start and end
                say(f"still  {counts(jobs, outcome, started)}{left}")
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
    node = ray.get_runtime_context().get_node_id()[:8]

    def count_epochs(line: str) -> None:
        if EPOCH_LINE.match(line):
            progress.epoch.remote(job.name)

    return run_job(job, dataclasses.replace(settings, gpu_ids=gpus, node=node), list(upstream), count_epochs)


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

"""A study's experiments, and the stages they share.

The grid uses the syntax of ``dvc exp run -S`` (DVC's own parser expands it): ``seed=range(0,5)``,
``kd.mode=ban,cwtm``, ``+students.gen3={teacher: gen2}``. Each experiment's params are checked as
the stages would check them before anything runs. A stage is shared when several experiments would
run it with the same command, the same params values and the same upstream work: it then becomes a
job of its own, run once, and the experiments that need it wait for it and take its outputs from
DVC's run-cache instead of running it again.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ban.core.config import Params, params_from_mapping
from ban.core.errors import BanError, ConfigError
from ban.core.paths import PARAMS, code_record_path
from ban.validation.code_records import stage_sources
from ban.validation.params_file import validate_everything
from ban_pipeline.engines import dvc_private
from ban_pipeline.processes import output_of

TRAINING = "stages.train"  # the command of the stages that train for train.epochs


@dataclass(frozen=True)
class Experiment:
    name: str
    overrides: tuple[str, ...]  # concrete ``-S`` values, as ``dvc exp run -S`` takes them
    params_file: str | None = None  # a committed params file (a preset) that replaces params.yaml first


@dataclass(frozen=True)
class Rejected:
    """An experiment of the grid whose params are invalid: reported, never run."""

    name: str
    overrides: tuple[str, ...]
    error: str


@dataclass(frozen=True)
class Stage:
    address: str  # as dvc.yaml names it: "teacher", "student@gen1"
    key: str  # the same for the same command, params values and upstream work
    epochs: int = 0  # a training stage's epochs (train.epochs), 0 for the others
    restorable: bool = True  # DVC's run-cache can restore it: it has outputs, some of them cached


@dataclass(frozen=True)
class Job:
    """One unit of work in its own clone: a shared stage (``dvc repro``) or a whole experiment."""

    name: str
    overrides: tuple[str, ...]
    stage: str | None  # the shared stage to reproduce; None: the experiment (``dvc exp run``)
    needs: tuple[str, ...]  # jobs whose outputs this one takes from the run-cache
    epochs: int = 0  # the epochs this job trains, for the study's estimate of the time left
    params_file: str | None = None  # a committed params file (a preset) that replaces params.yaml first

    @property
    def is_experiment(self) -> bool:
        return self.stage is None


def expand_grid(overrides: list[str]) -> list[tuple[str, ...]]:
    """Every combination of the sweep overrides, expanded exactly as ``dvc exp run --queue -S`` does."""
    from dvc.exceptions import DvcException
    from hydra.errors import HydraException

    by_file = dvc_private.path_overrides(overrides)
    others = sorted(set(by_file) - {str(PARAMS)})
    if others:
        raise ConfigError(f"-S: only {PARAMS} is a params file here, not {', '.join(others)}")
    if not by_file:
        return [()]
    try:
        sweeps = dvc_private.hydra_sweeps(by_file)
    except (DvcException, ValueError, HydraException) as error:
        raise ConfigError(f"-S {' '.join(overrides)}: {str(error).splitlines()[0]}") from None
    return [tuple(sweep[str(PARAMS)]) for sweep in sweeps]


def grid_experiment_name(prefix: str, index: int, overrides: tuple[str, ...]) -> str:
    """``<prefix>-<index>-<overrides>``, made of the characters a git reference may hold."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", "-".join(overrides)).strip("_")
    return f"{prefix}-{index:02d}" + (f"-{slug[:60]}" if slug else "")


def grid_experiments(prefix: str, grid: list[tuple[str, ...]], params_file: str | None = None,
                     fixed: tuple[str, ...] = ()) -> list[Experiment]:
    """One experiment per point of the grid, named after its overrides (of several points, those that
    tell them apart: not a data path they all share); ``fixed`` overrides come first in each."""
    common = set.intersection(*(set(point) for point in grid)) if len(grid) > 1 else set()
    return [Experiment(grid_experiment_name(prefix, number, tuple(o for o in point if o not in common)),
                       fixed + point, params_file) for number, point in enumerate(grid, start=1)]


@dataclass
class Plan:
    jobs: list[Job]  # shared stages first, then experiments
    rejected: list[Rejected]
    params: dict[str, Params]  # each accepted experiment's params, as its stages will read them


def plan_study(root: Path, experiments: list[Experiment], commit: str = "HEAD") -> Plan:
    """The jobs of a study and the experiments refused, from ``dvc.yaml`` and each experiment's params
    file as ``commit`` has them: what the jobs will run, whatever the working tree holds."""
    accepted, rejected = [], []
    stages: dict[str, list[Stage]] = {}
    params: dict[str, Params] = {}
    bases: dict[str, bytes] = {}  # each params file read once from the commit, whatever the experiments
    with scratch_repository(root, commit) as scratch:
        for experiment in experiments:
            path = experiment.params_file or str(PARAMS)
            if path not in bases:
                bases[path] = committed(root, commit, Path(path))
            base = bases[path]
            try:
                stages[experiment.name], params[experiment.name] = resolve_stages(scratch, base,
                                                                                  experiment.overrides)
            except BanError as error:
                rejected.append(Rejected(experiment.name, experiment.overrides, str(error)))
                continue
            accepted.append(experiment)
    return Plan(shared_jobs(accepted, stages), rejected, params)


def shared_jobs(experiments: list[Experiment], stages: dict[str, list[Stage]]) -> list[Job]:
    """A job per stage that two or more experiments share and DVC's run-cache can restore (``validate``
    and ``evaluate`` have only uncached outputs: a shared run of them would run again in each
    experiment), then one job per experiment."""
    users: dict[str, list[str]] = {}
    for experiment in experiments:
        for stage in stages[experiment.name]:
            users.setdefault(stage.key, []).append(experiment.name)
    by_name = {experiment.name: experiment for experiment in experiments}
    jobs: dict[str, Job] = {}  # by stage key, in the order of the first experiment's pipeline
    for experiment in experiments:
        upstream: list[str] = []
        for stage in stages[experiment.name]:
            if len(users[stage.key]) < 2 or not stage.restorable:
                continue
            if stage.key not in jobs:
                first = by_name[users[stage.key][0]]
                name = f"shared-{stage.address.replace('@', '-')}-{stage.key[:8]}"
                jobs[stage.key] = Job(name, first.overrides, stage.address, tuple(upstream), stage.epochs,
                                      first.params_file)
            upstream.append(jobs[stage.key].name)
    shared = list(jobs.values())
    needs = {experiment.name: tuple(jobs[stage.key].name for stage in stages[experiment.name]
                                    if stage.key in jobs) for experiment in experiments}
    epochs = {experiment.name: sum(stage.epochs for stage in stages[experiment.name] if stage.key not in jobs)
              for experiment in experiments}
    return shared + [Job(e.name, e.overrides, None, needs[e.name], epochs[e.name], e.params_file)
                     for e in experiments]


def without_finished(jobs: list[Job], finished: set[str]) -> list[Job]:
    """The jobs left when the ``finished`` experiments are not run again: the other experiments and the
    shared stages they need."""
    left = [job for job in jobs if job.is_experiment and job.name not in finished]
    needed = {name for job in left for name in job.needs}
    return [job for job in jobs if job.name in needed] + left


@contextmanager
def scratch_repository(root: Path, commit: str) -> Iterator[Path]:
    """A throwaway DVC repository holding the ``dvc.yaml`` of ``commit``, to resolve its stages."""
    with tempfile.TemporaryDirectory(prefix="ban-plan-") as directory:
        scratch = Path(directory)
        (scratch / "dvc.yaml").write_bytes(committed(root, commit, Path("dvc.yaml")))
        (scratch / ".dvc").mkdir()
        (scratch / ".dvc" / "config").write_text("[core]\n    no_scm = true\n    analytics = false\n")
        yield scratch


def committed(root: Path, commit: str, path: Path) -> bytes:
    """The content of ``path`` in ``commit``."""
    try:
        return output_of(["git", "show", f"{commit}:{path.as_posix()}"], root)
    except BanError:
        raise ConfigError(f"{path} is not in commit {commit[:12]}: commit it first") from None


def resolve_stages(scratch: Path, base: bytes, overrides: tuple[str, ...]) -> tuple[list[Stage], Params]:
    """The stages ``dvc exp run -S overrides`` would run on the params file ``base``, each with its key,
    and the params, checked first."""
    from dvc.exceptions import DvcException

    params_file = scratch / PARAMS
    params_file.write_bytes(base)
    try:
        dvc_private.apply_overrides(params_file, list(overrides))
    except DvcException as error:
        cause = error.__cause__ or error
        raise ConfigError(f"-S {' '.join(overrides)}: {str(cause).splitlines()[0]}") from None
    resolved = params_from_mapping(yaml.safe_load(params_file.read_text()))
    validate_everything(resolved)
    records = code_records(resolved)
    with dvc_private.repository(scratch) as repo:
        pipeline = dvc_private.pipeline_stages(repo)
        producers = {out.def_path: stage.name for stage in pipeline for out in stage.outs}
        found: dict[str, Any] = {}
        epochs: dict[str, int] = {}
        restorable = {stage.name: any(out.use_cache for out in stage.outs) for stage in pipeline}
        for stage in _upstream_first(pipeline, producers):
            params = dvc_private.stage_params(stage)
            inputs = sorted(records[path] if path in records else found[producer] if producer
                            else _file_key(params_file, path) for path in dvc_private.stage_paths(stage)
                            for producer in _producers(path, producers))
            key = hashlib.sha256(json.dumps([stage.cmd, params, inputs], sort_keys=True,
                                            default=str).encode()).hexdigest()
            found[stage.name] = key
            epochs[stage.name] = params.get("train", {}).get("epochs", 0) if TRAINING in stage.cmd else 0
    stages = [Stage(address, key, epochs[address], restorable[address]) for address, key in found.items()]
    return stages, resolved


def code_records(params: Params) -> dict[str, str]:
    """The key of each ``code/<stage>.json`` the ``validate`` stage would write for ``params``: its content.
    (Keyed by its producer, ``validate``, it would differ with every change to the params file, which
    ``validate`` reads whole, and no two experiments would share a stage.)"""
    return {code_record_path(stage).as_posix(): json.dumps(sources.record(), sort_keys=True)
            for stage, sources in stage_sources(params).items()}


def _file_key(params_file: Path, path: str) -> str:
    """A file no stage makes stands for itself: every experiment runs the code of the same commit. The
    params file, which the overrides change (the ``validate`` stage depends on all of it), counts by
    its content."""
    return hashlib.sha256(params_file.read_bytes()).hexdigest() if path == params_file.name else path


def _producers(path: str, producers: dict[str, str]) -> list[str]:
    """The stages whose outputs a dependency covers (a folder covers every output inside it); for a
    file no stage makes (code), the empty name, which stands for the path itself."""
    made = sorted({stage for out, stage in producers.items()
                   if out == path or out.startswith(f"{path}/") or path.startswith(f"{out}/")})
    return made or [""]


def _upstream_first(pipeline: list[Any], producers: dict[str, str]) -> list[Any]:
    """The stages in an order where each comes after the stages whose outputs it reads."""
    by_address = {stage.name: stage for stage in pipeline}
    ordered: list[Any] = []

    def visit(stage: Any) -> None:
        if stage in ordered:
            return
        for dep in stage.deps:
            for producer in _producers(dep.def_path, producers):
                if producer and producer != stage.name:
                    visit(by_address[producer])
        ordered.append(stage)

    for stage in pipeline:
        visit(stage)
    return ordered

"""The study launcher's entry: the experiments a launch asks for (a grid of ``-S`` overrides of a params
file, or the rows of the paper's tables), its settings and data checked, then run on Ray or, with
``--dry-run``, listed with their estimated cost."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ban.core.config import Params
from ban.core.errors import BanError, ConfigError
from ban_pipeline.launch.cluster import check_cluster
from ban_pipeline.launch.data import check_study_data
from ban_pipeline.launch.plan import (
    Experiment,
    Job,
    expand_grid,
    grid_experiments,
    plan_study,
    without_finished,
)
from ban_pipeline.launch.settings import Request, committed_params, pushed_experiments, study_settings
from ban_pipeline.launch.study import Resources, run_on_ray
from ban_pipeline.paper_tables import table_named, tables_named
from ban_pipeline.presets import estimated_gpu_hours, short_number
from ban_pipeline.processes import dvc


@dataclass(frozen=True)
class LaunchOptions:
    """The launcher's options (``ban launch --help``), by their names on the command line."""

    set_param: list[str] = field(default_factory=list)
    params: str | None = None
    table: str | None = None
    rows: str | None = None
    address: str | None = None
    cpus_per_experiment: int = 1
    gpus_per_experiment: float = 0
    git_remote: str | None = None
    dvc_remote: str | None = None
    state_dir: str | None = None
    work_dir: str | None = None
    name: str | None = None
    dry_run: bool = False


def launch_study(root: Path, args: LaunchOptions, say: Callable[[str], None]) -> None:
    """Run the study ``args`` asks for, from the repository at ``root``; ``say`` prints progress."""
    if not (root / "dvc.yaml").exists() or not (root / ".git").exists():
        raise ConfigError("run it at the root of the project's git repository (where dvc.yaml is)")
    if args.cpus_per_experiment < 1 or args.gpus_per_experiment < 0:
        raise ConfigError("--cpus-per-experiment must be >= 1 and --gpus-per-experiment >= 0")
    tables = chosen_tables(args)  # the arguments first: a mistake in them costs no git or DVC call
    rows = rows_by_table(args.rows, tables)
    grid = expand_grid(args.set_param)
    address = args.address or os.environ.get("RAY_ADDRESS")
    name = args.name or "-".join(tables) or time.strftime("study-%Y%m%d-%H%M%S")
    request = Request(name, address, args.git_remote, args.dvc_remote, args.state_dir, args.work_dir,
                      args.cpus_per_experiment)
    settings = study_settings(root, request)
    if address and not args.dry_run:
        check_cluster(address)  # seconds, where ray.init would retry for a minute and end in a traceback
    plan = plan_study(root, requested(root, args.params, name, tables, rows, grid), settings.commit)
    experiments = [job for job in plan.jobs if job.is_experiment]
    finished = pushed_experiments(root, settings) & {job.name for job in experiments}
    jobs = without_finished(plan.jobs, finished)
    shared = [job.stage for job in jobs if not job.is_experiment]
    settings = dataclasses.replace(settings, shared_stages=tuple(sorted(set(shared))))
    counted = ", ".join(f"{stage} x{count}" if count > 1 else stage
                        for stage, count in Counter(shared).items())
    say(f"study {name}: {len(experiments) + len(plan.rejected)} experiments of commit "
        f"{settings.commit[:12]} ({len(plan.rejected)} refused), {len(shared)} shared stages run once"
        f"{': ' + counted if shared else ''}; logs in {settings.log_dir}")
    if finished:
        say("finished before (in the git remote), not run again: " + ", ".join(sorted(finished)))
    left = {job.name: plan.params[job.name] for job in jobs if job.is_experiment}
    if args.dry_run:
        say(dry_run(jobs, left))
    check_study_data(root, left)
    if args.dry_run:
        return
    resources = Resources(args.cpus_per_experiment, args.gpus_per_experiment)
    trainings = {experiment: params.train for experiment, params in left.items()}
    outcome = run_on_ray(jobs, settings, resources, address, plan.rejected, trainings, say)
    succeeded = sorted(finished) + [result.name for result in outcome.experiments if result.ok]
    if succeeded and settings.git_remote != str(root):
        dvc(root, "exp", "pull", "--no-cache", settings.git_remote, *succeeded)
    aggregate = f"`python -m stages.aggregate --table {','.join(tables)}`" if tables \
        else "`python -m stages.aggregate`"
    say(f"{len(succeeded)} of {len(experiments) + len(plan.rejected)} experiments succeeded; see them with "
        f"`dvc exp show`, aggregate them with {aggregate}")
    if outcome.failed:
        raise BanError(f"{len(outcome.failed)} experiment(s) failed: {', '.join(outcome.failed)}")


def chosen_tables(args: LaunchOptions) -> list[str]:
    """The names ``--table`` gives (``all``: every table), checked against the other options."""
    if not args.table:
        if args.rows:
            raise ConfigError("--rows selects rows of a --table")
        return []
    if args.params:
        raise ConfigError("--table runs the presets its rows name; give --table or --params, not both")
    names = [table.name for table in tables_named(args.table)]  # an unknown name stops here
    if len(names) > 1 and args.name:
        raise ConfigError("--name: several tables are each named after their table (as `stages.aggregate "
                          "--table` reads them); give --name with one table only")
    return names


def requested(root: Path, params_file: str | None, name: str, tables: list[str], rows: dict[str, list[str]],
              grid: list[tuple[str, ...]]) -> list[Experiment]:
    """The grid's experiments of the params file (``--params``, else params.yaml), or of every run of
    the tables' rows (``--table``, ``--rows``), named ``<name>-<run>-<NN>...`` (several tables:
    ``<table>-<run>-<NN>...``)."""
    if not tables:
        return grid_experiments(name, grid, committed_params(root, params_file))
    experiments = []
    for table in map(table_named, tables):
        prefix = name if len(tables) == 1 else table.name
        experiments += [experiment for run in table.selected(rows.get(table.name)) for experiment in
                        grid_experiments(f"{prefix}-{run.id}", grid,
                                         committed_params(root, run.params_file, "--table"), run.overrides)]
    return experiments


def rows_by_table(rows: str | None, tables: list[str]) -> dict[str, list[str]]:
    """``--rows``: ``ROW,...`` of the one table, or ``TABLE:ROW,...`` (a table named nowhere runs whole)."""
    chosen: dict[str, list[str]] = {}
    for entry in [entry.strip() for entry in rows.split(",")] if rows else []:
        table, _, row = entry.rpartition(":")
        table = table or (tables[0] if len(tables) == 1 else "")
        if table not in tables:
            raise ConfigError(f"--rows: {entry!r}: name the row as TABLE:ROW, TABLE one of "
                              f"{', '.join(tables)}")
        chosen.setdefault(table, []).append(row)
    for table, names in chosen.items():
        table_named(table).selected(names)  # an unknown row stops here
    return chosen


def dry_run(jobs: list[Job], experiments: dict[str, Params]) -> str:
    """Each job, and each experiment's estimated cost (from its networks' FLOPs, as ``stages.preset``)."""
    lines = []
    hours: dict[str, float] = {}
    for job in jobs:
        cost = ""
        if job.is_experiment:
            hours[job.name] = estimated_gpu_hours(experiments[job.name])
            cost = "" if math.isnan(hours[job.name]) else f"  [~{short_number(hours[job.name])} H100-hours]"
        lines.append(f"  {job.name}: {job.stage or ' '.join(job.overrides) or '(committed params)'}"
                     f"{' after ' + ', '.join(job.needs) if job.needs else ''}{cost}")
    known = [value for value in hours.values() if not math.isnan(value)]
    if known:
        lines.append(f"estimated cost: {short_number(sum(known))} H100-hours for {len(known)} experiments "
                     "(from FLOPs at an assumed sustained throughput; shared stages counted in each)")
    return "\n".join(lines)

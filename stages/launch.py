"""``python -m stages.launch -S 'seed=range(0,5)' -S 'kd.mode=ban,cwtm'``: a study on a Ray cluster.

Not a pipeline stage. Every combination of the ``-S`` overrides (the syntax of ``dvc exp run -S``)
becomes an ordinary DVC experiment of the committed HEAD, run in its own clone on a Ray worker. Stages
that several experiments share (``prepare``, a teacher, a student) run once; the others take them from
DVC's run-cache. Without ``--address`` (or ``RAY_ADDRESS``) a local Ray instance is started and stopped.
``--table NAME`` runs one of the paper's tables (``paper/tables.yaml``): each run of its rows (a preset
with its overrides) times the grid. Missing data stops the study before it starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
from collections import Counter
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
from ban_pipeline.paper_tables import load_tables, table_named
from ban_pipeline.presets import estimated_gpu_hours
from ban_pipeline.processes import dvc
from stages.cli import run
from stages.preset import readable


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    root = Path.cwd()
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
    print(f"study {name}: {len(experiments) + len(plan.rejected)} experiments of commit "
          f"{settings.commit[:12]} ({len(plan.rejected)} refused), {len(shared)} shared stages run once"
          f"{': ' + counted if shared else ''}; logs in {settings.log_dir}", flush=True)
    if finished:
        print("finished before (in the git remote), not run again:", ", ".join(sorted(finished)), flush=True)
    left = {job.name: plan.params[job.name] for job in jobs if job.is_experiment}
    if args.dry_run:
        print(dry_run(jobs, left))
    check_study_data(root, left)
    if args.dry_run:
        return
    resources = Resources(args.cpus_per_experiment, args.gpus_per_experiment)
    trainings = {experiment: params.train for experiment, params in left.items()}
    outcome = run_on_ray(jobs, settings, resources, address, plan.rejected, trainings,
                         lambda line: print(line, flush=True))
    succeeded = sorted(finished) + [result.name for result in outcome.experiments if result.ok]
    if succeeded and settings.git_remote != str(root):
        dvc(root, "exp", "pull", "--no-cache", settings.git_remote, *succeeded)
    aggregate = " and ".join(f"`python -m stages.aggregate --table {table}`" for table in tables) \
        or "`python -m stages.aggregate`"
    print(f"{len(succeeded)} of {len(experiments) + len(plan.rejected)} experiments succeeded; see them with "
          f"`dvc exp show`, aggregate them with {aggregate}", flush=True)
    if outcome.failed:
        raise BanError(f"{len(outcome.failed)} experiment(s) failed: {', '.join(outcome.failed)}")


def chosen_tables(args: argparse.Namespace) -> list[str]:
    """The names ``--table`` gives (``all``: every table), checked against the other options."""
    if not args.table:
        if args.rows:
            raise ConfigError("--rows selects rows of a --table")
        return []
    if args.params:
        raise ConfigError("--table runs the presets its rows name; give --table or --params, not both")
    names = list(load_tables()) if args.table == "all" else [name.strip() for name in args.table.split(",")]
    for name in names:
        table_named(name)  # an unknown name stops here
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
            cost = "" if math.isnan(hours[job.name]) else f"  [~{readable(hours[job.name])} H100-hours]"
        lines.append(f"  {job.name}: {job.stage or ' '.join(job.overrides) or '(committed params)'}"
                     f"{' after ' + ', '.join(job.needs) if job.needs else ''}{cost}")
    known = [value for value in hours.values() if not math.isnan(value)]
    if known:
        lines.append(f"estimated cost: {readable(sum(known))} H100-hours for {len(known)} experiments "
                     "(from FLOPs at an assumed sustained throughput; shared stages counted in each)")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stages.launch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-S", "--set-param", action="append", default=[], metavar="[<file>:]<key>=<values>",
                        help="an override, or a sweep (kd.mode=ban,cwtm; seed=range(0,5)), as dvc exp run -S")
    parser.add_argument("--params", metavar="FILE", help="a committed params file (e.g. presets/NAME.yaml) "
                        "that replaces params.yaml in every experiment before the overrides")
    parser.add_argument("--table", metavar="NAME[,NAME...]", help="run every row of the paper's tables "
                        "(paper/tables.yaml; `python -m stages.tables` lists them; `all`: every one): their "
                        "runs x the -S grid")
    parser.add_argument("--rows", metavar="ROW,...", help="only these rows of --table (TABLE:ROW with "
                        "several tables; a table named nowhere runs whole)")
    parser.add_argument("--address", help="Ray cluster to join ('auto': the local node's); default: "
                        "RAY_ADDRESS, or a local Ray instance started for this study")
    parser.add_argument("--cpus-per-experiment", type=int, default=1, help="CPUs each job asks Ray for, "
                        "and its training threads (default: 1)")
    parser.add_argument("--gpus-per-experiment", type=float, default=0, help="GPUs each job asks Ray for "
                        "and trains on (default: 0)")
    parser.add_argument("--git-remote", help="git remote (name or URL) that workers clone from and push "
                        "experiments to; default: origin if set, else this repository (one host only)")
    parser.add_argument("--dvc-remote", help="DVC remote (name or URL) through which workers share outputs "
                        "and the run-cache; default: the default DVC remote, else this repository's cache "
                        "shared directly (one host only)")
    parser.add_argument("--state-dir", help="where train stages keep their per-epoch state (BAN_STATE_DIR); "
                        "shared storage lets a retry on another host resume (default: under --work-dir)")
    parser.add_argument("--work-dir", help="where each host clones the jobs (default: a folder in its "
                        "temporary directory)")
    parser.add_argument("--name", help="prefix of the experiments' names (default: the --table, else "
                        "study-<date>-<time>); the same name again runs only what is left")
    parser.add_argument("--dry-run", action="store_true", help="print the experiments, shared stages and "
                        "estimated cost, check the data, run nothing")
    return parser


if __name__ == "__main__":
    run(main)

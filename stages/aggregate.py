"""``python -m stages.aggregate``: a multi-seed study from this repository's finished DVC experiments.

Not a pipeline stage: it reads every experiment (``dvc exp show --json``), groups them into variants by
the params that differ, and writes to ``--out``: ``study.md`` (mean ± sd per network and variant, paired
differences with a t-test and a Wilcoxon test, each beside its Holm-adjusted p), ``study.png``, and the
same numbers as CSV files.
``--name NAME`` keeps the experiments of the launch ``--name NAME``; ``--record FILE`` first merges them
into a study's record, a file committed as a long study's experiments land, and aggregates the record.

With ``--table NAME`` it reads the experiments ``python -m stages.launch --table NAME`` ran instead and
writes the paper's table: ``table.md`` (each cell ours beside the paper's number), ``table.png`` and
``cells.csv``, by default to ``reports/tables/NAME``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from ban.core.errors import ConfigError
from ban_pipeline.reporting.experiments import FinishedExperiment, finished_experiments
from ban_pipeline.reporting.record import of_launch, update_record
from ban_pipeline.reporting.study import aggregate_study
from ban_pipeline.reporting.tables import (
    cell_results,
    experiments_of_runs,
    plot_table,
    row_parameters,
    table_markdown,
)
from ban_pipeline.tables import Table, table_named
from ban_pipeline.tools import dvc
from stages.cli import run


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.aggregate", description=__doc__)
    parser.add_argument("--out", type=Path, help="output folder (default: reports/study, or "
                        "reports/tables/<table>)")
    parser.add_argument("--table", help="one of the paper's tables (paper/tables.yaml), from the experiments "
                        "`python -m stages.launch --table` ran")
    parser.add_argument("--name", help="only the experiments of the launch `--name NAME` (named NAME-...); "
                        "with --table, default: the table's name")
    parser.add_argument("--record", type=Path, metavar="FILE",
                        help="a study's record (a `dvc exp show --json` file, committed as experiments "
                        "land): merge the launch's finished experiments into it, then aggregate the "
                        "whole record")
    parser.add_argument("--all-commits", action="store_true",
                        help="experiments of every commit, not only of HEAD")
    parser.add_argument("--json", type=Path, help="read a saved `dvc exp show --json` instead of running it")
    args = parser.parse_args(argv)
    table = table_named(args.table) if args.table else None
    launch = args.name or (table.name if table else None)
    if args.record and not launch:
        raise ConfigError("--record keeps the experiments of one launch: give its --name")
    show = json.loads(args.json.read_text()) if args.json else exp_show(args.all_commits)
    if launch:
        show = of_launch(show, launch)
    if args.record:
        show, gained = update_record(args.record, show)
        recorded = sum(len(baseline["experiments"]) for baseline in show)
        print(f"{args.record}: {recorded} experiments, {len(gained)} new: {', '.join(gained) or '-'}",
              file=sys.stderr)
    runs, skipped = finished_experiments(show)
    if table:
        if skipped:
            print(f"not finished (queued, running or failed), left out: {', '.join(skipped)}",
                  file=sys.stderr)
        write_table(table, launch, runs, args.out or Path("reports/tables") / table.name)
        return
    study = aggregate_study(runs, skipped)
    study.write(args.out or Path("reports/study"))
    print(study.text)


def write_table(table: Table, study: str, runs: list[FinishedExperiment], out: Path) -> None:
    """``table.md``, ``table.png`` and ``cells.csv`` of the table's finished experiments."""
    experiments = experiments_of_runs(table, study, runs)
    if not any(experiments.values()):
        print(f"warning: no finished experiment is named {study}-<run>-...: every cell is missing; "
              "give the launch's --name", file=sys.stderr)
    results = cell_results(table, experiments)
    text = table_markdown(table, results, experiments, row_parameters(table, experiments))
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([result.to_dict() for result in results]).to_csv(out / "cells.csv", index=False)
    plot_table(table, results, out / "table.png")
    (out / "table.md").write_text(text)
    print(text, end="")


def exp_show(all_commits: bool) -> list[dict[str, Any]]:
    return json.loads(dvc(None, "exp", "show", "--json", *(["--all-commits"] if all_commits else [])))


if __name__ == "__main__":
    run(main)

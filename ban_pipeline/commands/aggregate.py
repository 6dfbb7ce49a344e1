"""``python -m stages.aggregate`` (``ban aggregate``): a multi-seed study from this repository's finished
DVC experiments.

Not a pipeline stage: it reads every experiment (``dvc exp show --json``), groups them into variants by
the params that differ, and writes to ``--out``: ``study.md`` (mean ± sd per network and variant, paired
differences with a t-test and a Wilcoxon test, each beside its Holm-adjusted p), ``study.png``, and the
same numbers as CSV files.
``--name NAME`` keeps the experiments of the launch ``--name NAME``; ``--record FILE`` first merges them
into a study's record, a file committed as a long study's experiments land, and aggregates the record.

With ``--table NAME`` it reads the experiments ``python -m stages.launch --table NAME`` ran instead and
writes the paper's table: ``table.md`` (each cell ours beside the paper's number), ``table.png`` and
``cells.csv``, by default to ``reports/tables/NAME``; ``--table table1,table2`` (or ``all``), what one
launch of several tables ran, writes each so.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ban.core.errors import ConfigError
from ban_pipeline.paper_tables import Table, tables_named
from ban_pipeline.processes import dvc
from ban_pipeline.reporting.aggregate import write_study, write_table
from ban_pipeline.reporting.experiments import finished_experiments
from ban_pipeline.reporting.record import of_launch, update_record

TABLES_OUT = Path("reports/tables")  # each table in a folder of its name


def main(argv: list[str], prog: str = "python -m stages.aggregate") -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--out", type=Path, help="output folder (default: reports/study, or "
                        "reports/tables/<table>)")
    parser.add_argument("--table", help="one of the paper's tables (paper/tables.yaml), from the experiments "
                        "`python -m stages.launch --table` ran; several separated by commas, or `all`, "
                        "each to reports/tables/<table>")
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
    tables = tables_named(args.table) if args.table else []
    if len(tables) > 1 and (args.name or args.out or args.record):
        raise ConfigError("--table with several tables reads each from the launch named after it into "
                          "reports/tables/<table>: give --name, --out or --record with one table only")
    launch = args.name or (tables[0].name if tables else None)
    if args.record and not launch:
        raise ConfigError("--record keeps the experiments of one launch: give its --name")
    show = json.loads(args.json.read_text()) if args.json else exp_show(args.all_commits)
    if len(tables) > 1:
        for table in tables:
            aggregate_table(table, table.name, of_launch(show, table.name), TABLES_OUT / table.name)
        return
    if launch:
        show = of_launch(show, launch)
    if args.record:
        show, gained = update_record(args.record, show)
        recorded = sum(len(baseline["experiments"]) for baseline in show)
        print(f"{args.record}: {recorded} experiments, {len(gained)} new: {', '.join(gained) or '-'}",
              file=sys.stderr)
    if tables:
        aggregate_table(tables[0], launch, show, args.out or TABLES_OUT / tables[0].name)
        return
    runs, skipped = finished_experiments(show)
    print(write_study(runs, skipped, args.out or Path("reports/study")))


def aggregate_table(table: Table, launch: str, show: list[dict[str, Any]], out: Path) -> None:
    """The paper's table from the finished experiments of ``show``, written to ``out``."""
    runs, skipped = finished_experiments(show)
    if skipped:
        print(f"not finished (queued, running or failed), left out: {', '.join(skipped)}", file=sys.stderr)
    print(write_table(table, launch, runs, out), end="")


def exp_show(all_commits: bool) -> list[dict[str, Any]]:
    return json.loads(dvc(None, "exp", "show", "--json", *(["--all-commits"] if all_commits else [])))

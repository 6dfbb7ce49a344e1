"""A multi-seed study, or one of the paper's tables, written from finished DVC experiments.

``write_study``: ``study.md`` (mean ± sd per network and variant, paired differences with a t-test and
a Wilcoxon test, each beside its Holm-adjusted p), ``study.png`` and the same numbers as CSV files.
``write_table``: ``table.md`` (each cell ours beside the paper's number), ``table.png`` and ``cells.csv``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from ban_pipeline.paper_tables import Table
from ban_pipeline.reporting.experiments import FinishedExperiment
from ban_pipeline.reporting.study import aggregate_study
from ban_pipeline.reporting.table_results import (
    cell_results,
    experiments_of_runs,
    plot_table,
    row_parameters,
    table_markdown,
)


def write_study(experiments: list[FinishedExperiment], skipped: list[str], out: Path) -> str:
    """``study.md``, ``study.png`` and the CSV files of the finished experiments; the markdown."""
    study = aggregate_study(experiments, skipped)
    study.write(out)
    return study.text


def write_table(table: Table, study: str, runs: list[FinishedExperiment], out: Path) -> str:
    """``table.md``, ``table.png`` and ``cells.csv`` of the table's finished experiments; the markdown."""
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
    return text

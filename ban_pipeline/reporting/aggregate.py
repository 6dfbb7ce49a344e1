"""A multi-seed study, or one of the paper's tables, written from finished DVC experiments.

``write_study``: ``study.md`` (mean ± sd per network and variant, paired differences with a t-test and
a Wilcoxon test), ``study.png`` and the same numbers as CSV files. ``write_table``: ``table.md`` (each
cell ours beside the paper's number), ``table.png`` and ``cells.csv``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from ban.core.errors import BanError
from ban_pipeline.paper_tables import Table
from ban_pipeline.reporting.study import (
    TRAIN_ERROR,
    Run,
    between_markdown,
    differences,
    headline_metric,
    plot_study,
    study_frame,
    summary,
    summary_markdown,
    variant_markdown,
)
from ban_pipeline.reporting.table_results import (
    cell_results,
    experiments_of_runs,
    plot_table,
    row_parameters,
    table_markdown,
)


def write_study(runs: list[Run], skipped: list[str], out: Path) -> str:
    """``study.md``, ``study.png`` and the CSV files of the finished runs; the markdown."""
    if not runs:
        raise BanError("no finished experiment: queue some with `dvc exp run --queue -S 'seed=range(0,5)'` "
                       "and run them with `dvc queue start -j 1`")
    frame, dropped = study_frame(runs)
    metric = headline_metric(frame)
    table = summary(frame, [metric, TRAIN_ERROR])
    paired = differences(frame, metric)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "runs.csv", index=False)
    table.to_csv(out / "summary.csv", index=False)
    paired.to_csv(out / "differences.csv", index=False)
    plot_study(table, paired, metric, out / "study.png")
    text = report(frame, table, paired, metric, skipped, dropped)
    (out / "study.md").write_text(text)
    return text


def write_table(table: Table, study: str, runs: list[Run], out: Path) -> str:
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


def report(frame: pd.DataFrame, table: pd.DataFrame, paired: pd.DataFrame, metric: str, skipped: list[str],
           dropped: int) -> str:
    """The markdown of ``study.md``."""
    seeds = frame.groupby("variant", sort=False)["seed"].unique()
    lines = [f"# Study: {frame['experiment'].nunique()} experiments", "",
             "| variant | seeds |", "|---|---|"]
    lines += [f"| {variant} | {', '.join(map(str, sorted(values)))} |" for variant, values in seeds.items()]
    notes = []
    if skipped:
        notes.append(f"not finished (queued, running or failed), left out: {', '.join(skipped)}")
    if dropped:
        notes.append(f"{dropped} rows of repeated runs (same variant and seed) replaced by the newest run")
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    lines.append("")
    lines += [f"## {metric}, the variants side by side: mean ± sd (seeds)", "",
              summary_markdown(table, metric), ""]
    legend = f"Differences of {metric}, paired by seed: mean ± sd (paired t-test p, Wilcoxon signed-rank p)."
    for variant in seeds.index:
        lines += [f"## {variant}", "", legend, "", variant_markdown(table, paired, variant, metric), ""]
    between = between_markdown(paired)
    if between:
        lines += ["## Between variants (the same network, paired by seed)", "", between, ""]
    return "\n".join(lines)

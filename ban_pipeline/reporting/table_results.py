"""One of the paper's tables from finished experiments: each cell ours (mean ± sd over seeds, with a 95%
interval) beside the paper's single-run number.

A table run's experiments are those the launcher named ``<study>-<run>-<NN>...``; per seed the newest
counts. A cell with no finished experiment is shown as missing, never dropped. The paper's number is
marked where it falls outside our 95% t-interval (two seeds or more).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from scipy import stats

from ban.core.errors import BanError
from ban_pipeline.paper_tables import Table
from ban_pipeline.reporting.experiments import FinishedExperiment, flatten
from ban_pipeline.reporting.results import save_figure
from ban_pipeline.reporting.study_frame import network_metrics
from ban_pipeline.reporting.study_markdown import mean_sd

OUTSIDE = "*"  # marks a paper's number outside our 95% interval


@dataclass(frozen=True)
class CellResult:
    row: str
    column: str
    run: str
    network: str
    metric: str
    paper: float | None
    seeds: tuple[int, ...]
    values: tuple[float, ...]  # per seed, in the order of ``seeds``

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / self.n if self.n else math.nan

    @property
    def sd(self) -> float:
        return float(pd.Series(self.values).std()) if self.n > 1 else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        """The 95% t-interval of the mean; NaN for fewer than two seeds."""
        if self.n < 2:
            return math.nan, math.nan
        half = float(stats.t.ppf(0.975, self.n - 1)) * self.sd / math.sqrt(self.n)
        return self.mean - half, self.mean + half

    @property
    def difference(self) -> float:
        """Ours minus the paper's."""
        return self.mean - self.paper if self.paper is not None else math.nan

    @property
    def paper_outside(self) -> bool:
        low, high = self.interval
        return self.paper is not None and self.n > 1 and not low <= self.paper <= high

    def to_dict(self) -> dict[str, object]:
        low, high = self.interval
        fields = {key: value for key, value in dataclasses.asdict(self).items()
                  if key not in ("seeds", "values")}
        return {**fields, "n": self.n, "mean": self.mean, "sd": self.sd, "ci_low": low, "ci_high": high,
                "difference": self.difference, "paper_outside_ci": self.paper_outside,
                "seeds": " ".join(map(str, self.seeds))}


def experiments_of_runs(table: Table, study: str,
                        runs: list[FinishedExperiment]) -> dict[str, list[FinishedExperiment]]:
    """Each table run's finished experiments (named ``<study>-<run>-<NN>...``), the newest per seed.

    The experiments of one run must differ in their seed only: a cell averages seeds, not variants."""
    found: dict[str, list[FinishedExperiment]] = {run_id: [] for run_id in table.runs}
    for run in sorted(runs, key=lambda run: run.timestamp):
        match = re.match(rf"^{re.escape(study)}-([a-z0-9_]+)-\d\d(?:-|$)", run.name)
        if match and match.group(1) in found:
            found[match.group(1)].append(run)
    newest: dict[str, list[FinishedExperiment]] = {}
    for run_id, experiments in found.items():
        _check_only_seeds_differ(run_id, experiments)
        by_seed = {seed_of(run): run for run in experiments}
        newest[run_id] = [by_seed[seed] for seed in sorted(by_seed)]
    return newest


def seed_of(run: FinishedExperiment) -> int:
    return int(run.params.get("seed", 0))


def _check_only_seeds_differ(run_id: str, runs: list[FinishedExperiment]) -> None:
    flat = [flatten({key: value for key, value in run.params.items() if key != "seed"}) for run in runs]
    keys = sorted({key for values in flat for key in values})
    differing = [key for key in keys if len({repr(values.get(key)) for values in flat}) > 1]
    if differing:
        raise BanError(f"run {run_id}: its experiments differ in {', '.join(differing)}, not only in the "
                       "seed; launch each variant under its own --name and aggregate it with that --name")


def cell_results(table: Table, experiments: dict[str, list[FinishedExperiment]]) -> list[CellResult]:
    """Every cell of the table, in the paper's order, with the values of the seeds that have it."""
    results = []
    for row in table.rows:
        for cell in row.cells:
            seeds, values = [], []
            for run in experiments.get(cell.run, []):
                value = network_metrics(run, cell.network).get(cell.metric)
                if value is not None:
                    seeds.append(seed_of(run))
                    values.append(float(value))
            results.append(CellResult(row.name, cell.column, cell.run, cell.network, cell.metric, cell.paper,
                                      tuple(seeds), tuple(values)))
    return results


def cell_text(result: CellResult) -> str:
    """``ours vs paper (difference)``, e.g. ``17.02 ± 0.31 (5) vs 16.95 (+0.07)*``."""
    ours = f"{mean_sd(result.mean, result.sd)} ({result.n})" if result.n else "missing"
    if result.paper is None:
        return f"{ours} vs -"
    difference = f" ({result.difference:+.2f})" if result.n else ""
    return f"{ours} vs {result.paper:.2f}{difference}{OUTSIDE if result.paper_outside else ''}"


def table_markdown(table: Table, results: list[CellResult], experiments: dict[str, list[FinishedExperiment]],
                   parameters: dict[str, str]) -> str:
    """The table in the paper's layout, then which seeds each run has and what is missing."""
    by_cell = {(result.row, result.column): result for result in results}
    header = ["row", "parameters (paper; ours)", *table.columns]
    lines = [f"# {table.title}", "",
             f"Each cell: ours, mean ± sd over seeds (n), vs the paper's single run (ours − paper); "
             f"{OUTSIDE}: the paper's number is outside our 95% interval.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.rows:
        paper = "-" if row.parameters is None else f"{row.parameters:g}M"
        cells = [cell_text(by_cell[(row.name, column)]) for column in table.columns]
        lines.append(f"| {row.name} | {paper}; {parameters.get(row.name, '-')} | " + " | ".join(cells) + " |")
    lines += ["", "| run | seeds |", "|---|---|"]
    lines += [f"| {run_id} | {', '.join(str(seed_of(run)) for run in runs) or 'none'} |"
              for run_id, runs in experiments.items()]
    missing = [f"{result.row} / {result.column}" for result in results if not result.n]
    if missing:
        lines += ["", f"Missing ({len(missing)} of {len(results)} cells, no finished experiment has them): "
                  + "; ".join(missing)]
    return "\n".join(lines) + "\n"


def row_parameters(table: Table, experiments: dict[str, list[FinishedExperiment]]) -> dict[str, str]:
    """Our parameter count (millions) of each row's first network, from its experiments' metrics."""
    found = {}
    for row in table.rows:
        cell = row.cells[0]
        for run in experiments.get(cell.run, []):
            count = network_metrics(run, cell.network).get("params")
            if count:
                found[row.name] = f"{count / 1e6:.2f}M" if count >= 10_000 else f"{count:,}"
                break
    return found


def plot_table(table: Table, results: list[CellResult], path: Path) -> None:
    """Ours (mean, 95% interval) against the paper's number, one marker per column; the diagonal is
    where they agree."""
    figure, axes = plt.subplots(figsize=(6.5, 6))
    shown = [result for result in results if result.n and result.paper is not None]
    for column in table.columns:
        points = [result for result in shown if result.column == column]
        if not points:
            continue
        errors = [0.0 if math.isnan(p.interval[0]) else p.mean - p.interval[0] for p in points]
        axes.errorbar([p.paper for p in points], [p.mean for p in points], yerr=errors, fmt="o", capsize=3,
                      label=column)
    if shown:
        values = [p.paper for p in shown] + [p.mean for p in shown]
        low, high = min(values), max(values)
        axes.plot([low, high], [low, high], color="grey", linestyle="--", label="ours = paper")
    axes.set_xlabel(f"paper ({shown[0].metric if shown else table.metric})")
    axes.set_ylabel("ours: mean over seeds, 95% interval")
    axes.set_title(f"{table.name}: {len(shown)} of {len(results)} cells", fontsize=10)
    if shown:  # a table with no finished cell has nothing to label
        axes.legend(fontsize=7)
    axes.grid(alpha=0.3)
    save_figure(figure, path)

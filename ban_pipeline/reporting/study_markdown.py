"""A study's tables in Markdown: ``study.md`` and the tables the README quotes from it."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ban_pipeline.reporting.comparisons import ROLES, Role
from ban_pipeline.reporting.significance import p_value
from ban_pipeline.reporting.study_frame import TRAIN_ERROR

LEGEND = ("Differences of {metric}, paired by seed: mean ± sd (paired t-test p, its Holm-adjusted p; "
          "Wilcoxon signed-rank p, its Holm-adjusted p), Holm's correction over the comparisons of one "
          "table.")


def mean_sd(mean: float, sd: float, digits: int = 2) -> str:
    """``mean ± sd``; the mean alone where a single seed gives no sd."""
    return f"{mean:.{digits}f}" if math.isnan(sd) else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def summary_markdown(table: pd.DataFrame, metric: str) -> str:
    """Networks as rows, variants as columns, cells ``mean ± sd (n)``: the variants side by side."""
    cells = table.assign(cell=[f"{mean_sd(m, s)} ({n})" if n else "" for m, s, n in
                               zip(table[f"{metric}_mean"], table[f"{metric}_std"], table[f"{metric}_count"],
                                   strict=True)])
    wide = cells.pivot(index="name", columns="variant", values="cell")
    wide = wide.loc[list(dict.fromkeys(table["name"])), list(dict.fromkeys(table["variant"]))]
    return wide.fillna("").to_markdown()


def variant_markdown(table: pd.DataFrame, paired: pd.DataFrame, variant: str, metric: str) -> str:
    """One variant: per network the metric and the training error (mean ± sd (seeds)), then its paired
    differences to gen0, to its own teacher and to its control (see ``LEGEND``)."""
    rows = table[table["variant"] == variant]
    within = paired[(paired["variant"] == variant) & (paired["reference_variant"] == variant)] \
        if len(paired) else paired
    roles = [role for role in ROLES if len(within) and role in set(within["role"])]
    header = ["network", metric, TRAIN_ERROR] + [f"− {role}" for role in roles]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows.itertuples():
        cells = [row.name, _cell(table, row.Index, metric), _cell(table, row.Index, TRAIN_ERROR)]
        for role in roles:
            matches = within[(within["name"] == row.name) & (within["role"] == role)]
            named = role == Role.TEACHER or len(matches) > 1  # which teacher, or which of several controls
            cells.append("; ".join(difference_text(match) + (f" vs {match.reference}" if named else "")
                                   for match in matches.itertuples()))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def between_markdown(paired: pd.DataFrame) -> str:
    """Each network minus the same network of the first variant, seed by seed; empty for one variant."""
    between = paired[paired["role"] == Role.VARIANT] if len(paired) else paired
    if not len(between):
        return ""
    lines = ["| variant | network | minus the first variant |", "|---|---|---|"]
    lines += [f"| {row.variant} | {row.name} | {difference_text(row)} |" for row in between.itertuples()]
    return "\n".join(lines)


def _cell(table: pd.DataFrame, index: Any, metric: str) -> str:
    if f"{metric}_mean" not in table or not table.loc[index, f"{metric}_count"]:
        return ""
    return f"{mean_sd(table.loc[index, f'{metric}_mean'], table.loc[index, f'{metric}_std'])} " \
           f"({table.loc[index, f'{metric}_count']})"


def difference_text(row: Any) -> str:
    """``mean ± sd (t p, Holm; Wilcoxon p, Holm)`` of one row of the differences."""
    return (f"{mean_sd(row.mean, row.sd)} ({p_value(row.t_test_p)}, {p_value(row.t_test_p_holm)}; "
            f"{p_value(row.wilcoxon_p)}, {p_value(row.wilcoxon_p_holm)})")


def study_markdown(frame: pd.DataFrame, table: pd.DataFrame, paired: pd.DataFrame, metric: str,
                   skipped: list[str], dropped: int) -> str:
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
    for variant in seeds.index:
        lines += [f"## {variant}", "", LEGEND.format(metric=metric), "",
                  variant_markdown(table, paired, variant, metric), ""]
    between = between_markdown(paired)
    if between:
        lines += ["## Between variants (the same network, paired by seed)", "", LEGEND.format(metric=metric),
                  "", between, ""]
    return "\n".join(lines)

"""A study's figure: mean ± sd over seeds per network and variant, and the paired differences to gen0."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ban.core.config import TEACHER
from ban_pipeline.reporting.results import save_figure


def plot_study(table: pd.DataFrame, paired: pd.DataFrame, metric: str, path: Path) -> None:
    """Mean ± sd over seeds of the metric, of its paired difference to the teacher, and of the
    training error; one series per variant, networks in chain order."""
    names = list(dict.fromkeys(table["name"]))
    variants = list(dict.fromkeys(table["variant"]))
    panels = [(table, f"{metric}_mean", f"{metric}_std", _axis_label(metric)),
              (_to_teacher(paired), "mean", "sd", f"paired difference to {TEACHER}"),
              (table, "train_error_mean", "train_error_std", "training error (%)")]
    figure, grid = plt.subplots(1, 3, figsize=(15, 4.8))
    width = 0.7 / len(variants)
    for axes, (data, mean, sd, label) in zip(grid, panels, strict=True):
        for index, variant in enumerate(variants):
            rows = data[data["variant"] == variant] if mean in data else data.iloc[0:0]
            x = [names.index(name) + (index - (len(variants) - 1) / 2) * width for name in rows["name"]]
            axes.errorbar(x, rows[mean], yerr=rows[sd].fillna(0), fmt="o", capsize=3,
                          label=textwrap.fill(variant, 60))
        axes.set_xticks(range(len(names)), names, rotation=45, ha="right")
        axes.set_ylabel(label)
        axes.grid(axis="y", alpha=0.3)
    grid[1].axhline(0, color="grey", linestyle="--")
    grid[0].legend(fontsize=7)
    figure.suptitle("mean ± sd over seeds")
    save_figure(figure, path)


def _to_teacher(paired: pd.DataFrame) -> pd.DataFrame:
    """The within-variant differences to the teacher."""
    if not len(paired):
        return pd.DataFrame(columns=["variant", "name", "mean", "sd"])
    within = paired["reference_variant"] == paired["variant"]
    return paired[within & (paired["reference"] == TEACHER)]


def _axis_label(metric: str) -> str:
    return metric.replace("_", " ") + (" (%)" if metric.endswith("error") else "")

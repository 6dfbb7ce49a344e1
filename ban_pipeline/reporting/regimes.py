"""The teacher's regimes side by side: each student's gain over its own teacher against how one-hot
that teacher's targets are.

The paper's argument (section 3) is that a born-again student gains from the dark knowledge in its
teacher's outputs: the probabilities of the wrong classes. A teacher's mean probability of the true class
on its training batches measures how little of it is left (near 1: its targets are the labels again).
This module reads committed studies (``stages.aggregate``'s ``runs.csv`` and ``differences.csv``), one
variant each, and puts every student of every regime on one figure: x that probability, y the test error
its teacher minus its own, paired by seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import yaml

from ban.core.errors import BanError, ConfigError
from ban.tasks import TEACHER_TRUE_PROB
from ban_pipeline.reporting.results import Kind, save_figure
from ban_pipeline.reporting.study import TRAIN_ERROR, mean_sd, p_value


@dataclass(frozen=True)
class Regime:
    """One study's variant; ``teacher_true_prob`` by teacher, for records made before students' metrics
    carried it (the value of one seed's gradient analysis)."""

    label: str
    study: Path
    variant: str
    teacher_true_prob: dict[str, float] = field(default_factory=dict)


def load_regimes(path: Path) -> list[Regime]:
    try:
        entries = yaml.safe_load(path.read_text())["regimes"]
        return [Regime(entry["label"], Path(entry["study"]), str(entry["variant"]),
                       {str(k): float(v) for k, v in (entry.get(TEACHER_TRUE_PROB) or {}).items()})
                for entry in entries]
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise ConfigError(f"{path}: not a regimes file (regimes: a list of label, study, variant and "
                          f"optionally {TEACHER_TRUE_PROB}): {error!r}") from None


def regime_points(regime: Regime) -> pd.DataFrame:
    """One row per student of the regime whose teacher's true-class probability is known: the teacher's
    training error, that probability (mean and sd over seeds, or the one recorded value) and the gain."""
    runs = pd.read_csv(regime.study / "runs.csv")
    paired = pd.read_csv(regime.study / "differences.csv")
    runs = runs[runs["variant"] == regime.variant]
    if not len(runs):
        raise BanError(f"{regime.study}/runs.csv: no variant {regime.variant!r}")
    paired = paired[(paired["variant"] == regime.variant) & (paired["reference_variant"] == regime.variant)]
    rows = []
    for name, student in runs[runs["kind"] == Kind.STUDENT].groupby("name", sort=False):
        teacher = student["teacher"].iloc[0]
        probability = _teacher_true_prob(student, regime.teacher_true_prob.get(teacher))
        difference = paired[(paired["name"] == name) & (paired["reference"] == teacher)]
        if probability is None or not len(difference):
            continue
        teachers = runs[runs["name"] == teacher]
        rows.append({"regime": regime.label, "student": name, "teacher": teacher,
                     "teacher_train_error": teachers[TRAIN_ERROR].mean(), **probability,
                     "gain": 0.0 - difference["mean"].iloc[0], "gain_sd": difference["sd"].iloc[0],
                     "seeds": int(difference["n"].iloc[0]), "t_test_p": difference["t_test_p"].iloc[0]})
    return pd.DataFrame(rows)


def _teacher_true_prob(student: pd.DataFrame, recorded: float | None) -> dict[str, Any] | None:
    measured = student[TEACHER_TRUE_PROB].dropna() if TEACHER_TRUE_PROB in student else pd.Series()
    if len(measured):
        return {TEACHER_TRUE_PROB: measured.mean(), f"{TEACHER_TRUE_PROB}_sd": measured.std(),
                f"{TEACHER_TRUE_PROB}_seeds": len(measured)}
    if recorded is None:
        return None
    return {TEACHER_TRUE_PROB: recorded, f"{TEACHER_TRUE_PROB}_sd": math.nan, f"{TEACHER_TRUE_PROB}_seeds": 1}


def regimes_markdown(points: pd.DataFrame) -> str:
    lines = ["| regime | student (teacher) | teacher's training error % | teacher's true-class probability "
             "(seeds) | gain over its teacher, points: mean ± sd (t-test p) | seeds |",
             "|---|---|---|---|---|---|"]
    for row in points.itertuples():
        probability = f"{mean_sd(row.teacher_true_prob, row.teacher_true_prob_sd, 3)} " \
                      f"({row.teacher_true_prob_seeds})"
        lines.append(f"| {row.regime} | {row.student} ({row.teacher}) | {row.teacher_train_error:.2f} | "
                     f"{probability} | {mean_sd(row.gain, row.gain_sd)} ({p_value(row.t_test_p)}) | "
                     f"{row.seeds} |")
    return "\n".join(lines)


def plot_regimes(points: pd.DataFrame, path: Path) -> None:
    """Gain (mean ± sd over seeds) against the teacher's true-class probability, a colour per regime."""
    figure, axes = plt.subplots(figsize=(8, 5))
    axes.axhline(0, color="grey", linewidth=0.8)
    regimes = points.groupby("regime", sort=False)
    for (regime, rows), colour in zip(regimes, plt.cm.tab10.colors, strict=False):
        axes.errorbar(rows[TEACHER_TRUE_PROB], rows["gain"], yerr=rows["gain_sd"],
                      xerr=rows[f"{TEACHER_TRUE_PROB}_sd"].fillna(0), fmt="o", color=colour, capsize=3,
                      label=regime)
        for row in rows.itertuples():
            axes.annotate(row.student, (row.teacher_true_prob, row.gain), textcoords="offset points",
                          xytext=(5, 4), fontsize=8, color=colour)
    axes.set_xlabel("teacher's mean probability of the true class on its training batches")
    axes.set_ylabel("test error of the teacher − of the student (points)")
    axes.set_title("Born-again gain against the teacher's dark knowledge (mean ± sd over seeds)")
    axes.legend(fontsize=8)
    save_figure(figure, path)

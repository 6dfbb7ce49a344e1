"""The teacher's regimes side by side: each student's gain over its own teacher against how one-hot
that teacher's targets are.

The paper's argument (section 3) is that a born-again student gains from the dark knowledge in its
teacher's outputs: the probabilities of the wrong classes. A teacher's mean probability of the true class
on its training batches measures how little of it is left (near 1: its targets are the labels again).
This module reads committed studies (``stages.aggregate``'s ``runs.csv`` and ``differences.csv``), one
variant each, and puts every student of every regime on one figure: x that probability, y the test error
its teacher minus its own, paired by seed. A study whose students' metrics did not record the probability
keeps its students in the table, marked "not recorded", and off the figure: every number comes from a
committed record.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from ban.core.errors import BanError
from ban.core.schema import load_yaml
from ban.tasks import TEACHER_TRUE_PROB
from ban_pipeline.reporting.results import Kind, save_figure
from ban_pipeline.reporting.significance import holm, p_value
from ban_pipeline.reporting.study_frame import TRAIN_ERROR
from ban_pipeline.reporting.study_markdown import mean_sd

REGIMES = Path("reports/studies/regimes.yaml")


@dataclass(frozen=True)
class Regime:
    """One variant of a committed study (a folder ``stages.aggregate`` wrote), under a label of its own."""

    label: str
    study: str
    variant: str


@dataclass(frozen=True)
class RegimesFile:
    regimes: list[Regime]


def load_regimes(path: Path = REGIMES) -> list[Regime]:
    """The regimes of ``path``, read by the typed parser of ``params.yaml`` (an unknown key names the
    nearest known one)."""
    return load_yaml(RegimesFile, path).regimes


def write_regimes(path: Path, out: Path) -> str:
    """``regimes.md``, ``regimes.csv`` and ``regimes.png`` into ``out`` from the regimes of ``path`` whose
    study is aggregated (the others are left out with a warning); the markdown."""
    aggregated = []
    for regime in load_regimes(path):
        if not (Path(regime.study) / "runs.csv").exists():
            print(f"warning: {regime.study} is not aggregated yet (no runs.csv): {regime.label} left out",
                  file=sys.stderr)
            continue
        aggregated.append(regime)
    points = all_points(aggregated) if aggregated else pd.DataFrame()
    if not len(points):
        raise BanError(f"{path}: no regime has a student compared with its own teacher")
    out.mkdir(parents=True, exist_ok=True)
    points.to_csv(out / "regimes.csv", index=False)
    plot_regimes(points, out / "regimes.png")
    text = regimes_markdown(points) + "\n"
    (out / "regimes.md").write_text(text)
    return text


def all_points(regimes: list[Regime]) -> pd.DataFrame:
    """Every regime's points, with the t-test's Holm-adjusted p over the whole table."""
    points = pd.concat([regime_points(regime) for regime in regimes], ignore_index=True)
    if len(points):
        points.insert(points.columns.get_loc("t_test_p") + 1, "t_test_p_holm", holm(list(points["t_test_p"])))
    return points


def regime_points(regime: Regime) -> pd.DataFrame:
    """One row per student of the regime: its teacher's training error, that teacher's true-class
    probability over seeds (NaN where the study's metrics did not record it) and the gain."""
    study = Path(regime.study)
    runs = pd.read_csv(study / "runs.csv")
    paired = pd.read_csv(study / "differences.csv")
    runs = runs[runs["variant"] == regime.variant]
    if not len(runs):
        raise BanError(f"{study}/runs.csv: no variant {regime.variant!r}")
    paired = paired[(paired["variant"] == regime.variant) & (paired["reference_variant"] == regime.variant)]
    rows = []
    for name, student in runs[runs["kind"] == Kind.STUDENT].groupby("name", sort=False):
        teacher = student["teacher"].iloc[0]
        difference = paired[(paired["name"] == name) & (paired["reference"] == teacher)]
        if not len(difference):
            continue
        teachers = runs[runs["name"] == teacher]
        rows.append({"regime": regime.label, "student": name, "teacher": teacher,
                     "teacher_train_error": teachers[TRAIN_ERROR].mean(), **_teacher_true_prob(student),
                     "gain": 0.0 - difference["mean"].iloc[0], "gain_sd": difference["sd"].iloc[0],
                     "seeds": int(difference["n"].iloc[0]), "t_test_p": difference["t_test_p"].iloc[0]})
    return pd.DataFrame(rows)


def _teacher_true_prob(student: pd.DataFrame) -> dict[str, Any]:
    measured = student[TEACHER_TRUE_PROB].dropna() if TEACHER_TRUE_PROB in student else pd.Series()
    return {TEACHER_TRUE_PROB: measured.mean() if len(measured) else math.nan,
            f"{TEACHER_TRUE_PROB}_sd": measured.std() if len(measured) else math.nan,
            f"{TEACHER_TRUE_PROB}_seeds": len(measured)}


def regimes_markdown(points: pd.DataFrame) -> str:
    lines = ["| regime | student (teacher) | teacher's training error % | teacher's true-class probability "
             "(seeds) | gain over its teacher, points: mean ± sd (t-test p, Holm-adjusted p) | seeds |",
             "|---|---|---|---|---|---|"]
    for row in points.itertuples():
        probability = "not recorded" if not row.teacher_true_prob_seeds else \
            f"{mean_sd(row.teacher_true_prob, row.teacher_true_prob_sd, 3)} ({row.teacher_true_prob_seeds})"
        lines.append(f"| {row.regime} | {row.student} ({row.teacher}) | {row.teacher_train_error:.2f} | "
                     f"{probability} | {mean_sd(row.gain, row.gain_sd)} ({p_value(row.t_test_p)}, "
                     f"{p_value(row.t_test_p_holm)}) | {row.seeds} |")
    return "\n".join(lines)


def plot_regimes(points: pd.DataFrame, path: Path) -> None:
    """Gain (mean ± sd over seeds) against the teacher's true-class probability, a colour per regime;
    the students whose teacher's probability was not recorded are left off."""
    figure, axes = plt.subplots(figsize=(8, 5))
    axes.axhline(0, color="grey", linewidth=0.8)
    regimes = points[points[f"{TEACHER_TRUE_PROB}_seeds"] > 0].groupby("regime", sort=False)
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

"""Results of a chain as a table (like the paper's Table 2) and figures, from saved predictions only."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ban.predictions import GenerationPredictions, Predictions  # noqa: E402
from ban.tasks import TEACHER_TRUE_PROB, history_name  # noqa: E402


def agreement(a: Predictions, b: Predictions) -> float:
    """Percent of examples on which two networks predict the same class."""
    return float((a.argmax == b.argmax).double().mean() * 100)


class Kind(StrEnum):
    """What a row of a results table or a study is in its chain."""

    TEACHER = "teacher"
    STUDENT = "student"  # learns from its teacher
    CONTROL = "control"  # has a teacher in the chain, but its objective never reads it
    ENSEMBLE = "ensemble"


def kind_of_record(record: GenerationPredictions) -> Kind:
    """What a trained generation was, from its saved record: the teacher (none), a student (it trained
    on its teacher's outputs) or a control (it has a teacher in the chain but never read it)."""
    if record.teacher is None:
        return Kind.TEACHER
    return Kind.STUDENT if record.reads_teacher else Kind.CONTROL


# what each generation trained with (in its metrics), shown last so that numbers made in another
# precision or on another device are never compared blind
TRAINED_WITH = ("precision", "device")


def results_table(generations: dict[str, dict[str, Any]],
                  ensembles: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per generation (each with its ``kind``), then per ensemble; the metrics present, then
    precision and device."""
    rows = [{"name": name, **row} for name, row in generations.items()]
    rows += [{"name": name, "kind": Kind.ENSEMBLE, **row} for name, row in ensembles.items()]
    table = pd.DataFrame(rows).set_index("name")
    last = [column for column in TRAINED_WITH if column in table.columns]
    return table[[column for column in table.columns if column not in last] + last]


def write_markdown(table: pd.DataFrame, path: Path, title: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shown = table.drop(columns=[c for c in table.columns if c.endswith("_nll")], errors="ignore")
    counts = [c for c in ("params", "epochs") if c in shown.columns]
    shown = shown.astype(dict.fromkeys(counts, "Int64"))
    path.write_text(f"# {title}\n\n{shown.map(_cell).to_markdown(stralign='right', disable_numparse=True)}\n")


def _cell(value: Any) -> str:
    """Counts as integers, figures with two decimals, missing values blank."""
    if pd.isna(value):
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def plot_generations(table: pd.DataFrame, metric: str, path: Path, title: str) -> None:
    """The metric per generation, the teacher as a line, ensembles as separate markers."""
    generations = table[table["kind"] != Kind.ENSEMBLE]
    ensembles = table[table["kind"] == Kind.ENSEMBLE]
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(range(len(generations)), generations[metric], "o-", label="generations")
    axes.axhline(generations[metric].iloc[0], color="grey", linestyle="--", label="teacher (gen0)")
    if len(ensembles):
        newest = [members.split("+")[-1] for members in ensembles["members"]]  # Ens*k above its newest member
        names = list(generations.index)
        positions = [names.index(last) if last in names else len(names) + i for i, last in enumerate(newest)]
        axes.plot(positions, ensembles[metric], "s", color="tab:red", label="ensembles (Ens*k)")
        for x, (name, value) in zip(positions, ensembles[metric].items(), strict=True):
            axes.annotate(name, (x, value), textcoords="offset points", xytext=(5, 5), fontsize=8)
    axes.set_xticks(range(len(generations)), list(generations.index))
    axes.set_ylabel(metric.replace("_", " ") + (" (%)" if metric.endswith("error") else ""))
    axes.set_title(title)
    axes.legend()
    save_figure(figure, path)


def plot_analysis(histories: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """The gradient decomposition (paper section 3.2) per epoch, one line per student.

    A student keeps its colour in every panel; the legend sits in the training-error panel, the
    only one that also holds the students without a teacher (controls).
    """
    analysis = {"true_class_grad": "true-class part |q* - p*|",
                "dark_knowledge_grad": "dark-knowledge part ||q - p|| (other classes)",
                TEACHER_TRUE_PROB: "teacher's p* (true class)", "teacher_max_prob": "teacher's max p",
                "cwtm_weight_std": "sd of N * CWTM weight"}
    panels = {history_name("analysis", name): title for name, title in analysis.items()}
    panels[history_name("train", "error")] = "training error (%)"
    colours = {name: f"C{index % 10}" for index, name in enumerate(histories)}
    figure, grid = plt.subplots(2, 3, figsize=(12, 6))
    for axes, (key, title) in zip(grid.flat, panels.items(), strict=True):
        for name, history in histories.items():
            points = [(row["epoch"], row[key]) for row in history if key in row]
            if points:
                axes.plot(*zip(*points, strict=True), color=colours[name], label=name)
        axes.set_title(title, fontsize=10)
        axes.set_xlabel("epoch")
    grid.flat[-1].legend(fontsize=8)
    save_figure(figure, path)


def save_figure(figure: plt.Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)

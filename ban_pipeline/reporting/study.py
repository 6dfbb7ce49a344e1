"""A multi-seed study from its finished experiments: every table and figure ``stages.aggregate`` writes,
made in one place so that ``stages.verify`` re-makes exactly what was committed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ban.core.errors import BanError
from ban_pipeline.reporting.comparisons import differences
from ban_pipeline.reporting.experiments import FinishedExperiment
from ban_pipeline.reporting.study_figure import plot_study
from ban_pipeline.reporting.study_frame import TRAIN_ERROR, headline_metric, study_frame, summary
from ban_pipeline.reporting.study_markdown import study_markdown

TEXT_FILES = ("study.md", "runs.csv", "summary.csv", "differences.csv")  # what a study's numbers are in


@dataclass(frozen=True)
class Study:
    frame: pd.DataFrame  # one row per experiment and network
    summary: pd.DataFrame  # mean, sd and seeds per variant and network
    differences: pd.DataFrame  # the paired comparisons
    metric: str  # the headline metric
    text: str  # study.md

    def text_files(self) -> dict[str, str]:
        """The content of each of ``TEXT_FILES``."""
        return {"study.md": self.text, "runs.csv": self.frame.to_csv(index=False),
                "summary.csv": self.summary.to_csv(index=False),
                "differences.csv": self.differences.to_csv(index=False)}

    def write(self, out: Path) -> None:
        """The text files and ``study.png`` into ``out``."""
        out.mkdir(parents=True, exist_ok=True)
        for name, content in self.text_files().items():
            (out / name).write_text(content)
        plot_study(self.summary, self.differences, self.metric, out / "study.png")


def aggregate_study(experiments: list[FinishedExperiment], skipped: list[str]) -> Study:
    """The study of ``experiments``; ``skipped`` names the unfinished ones, noted in study.md."""
    if not experiments:
        raise BanError("no finished experiment: queue some with `dvc exp run --queue -S 'seed=range(0,5)'` "
                       "and run them with `dvc queue start -j 1`")
    frame, dropped = study_frame(experiments)
    metric = headline_metric(frame)
    table = summary(frame, [metric, TRAIN_ERROR])
    paired = differences(frame, metric)
    return Study(frame, table, paired, metric, study_markdown(frame, table, paired, metric, skipped, dropped))

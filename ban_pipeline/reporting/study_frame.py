"""A study's long table (one row per experiment and network) and its mean ± sd over seeds."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ban.core.config import TEACHER, Params, params_from_mapping
from ban.core.errors import BanError
from ban.core.paths import metrics_path
from ban.objectives import learns_from_teacher
from ban.tasks import headline_metrics, metric_name
from ban_pipeline.reporting.experiments import FinishedExperiment, variant_labels
from ban_pipeline.reporting.results import Kind

ENSEMBLE_FILE = str(metrics_path("ensemble"))
TRAIN_ERROR = metric_name("train", "error")  # beside the headline metric: how well each network fit


@dataclass(frozen=True)
class StudyRow:
    """One network (a generation or an ensemble) of one experiment: the rows of a study's long table."""

    variant: str
    seed: int
    experiment: str
    timestamp: str
    name: str
    kind: Kind
    teacher: str  # "" for the teacher and ensembles
    network: str  # the model's settings as JSON: a student meets the control of its own network
    metrics: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The row as the table holds it, its metrics as columns of their own."""
        fields = {key: value for key, value in dataclasses.asdict(self).items() if key != "metrics"}
        return {**fields, **self.metrics}


def network_metrics(experiment: FinishedExperiment, network: str) -> dict[str, Any]:
    """A generation's or an ensemble's numbers in ``experiment``, from its stage's metrics file (``{}`` if
    none)."""
    return (experiment.metrics.get(str(metrics_path(network)))
            or experiment.metrics.get(ENSEMBLE_FILE, {}).get(network, {}))


def experiment_rows(experiment: FinishedExperiment, variant: str) -> list[StudyRow]:
    """One row per generation and ensemble of ``experiment``; a missing metrics file is a BanError."""
    try:
        params = params_from_mapping(experiment.params)
    except BanError as error:
        raise BanError(f"experiment {experiment.name}: {error}") from None
    base = {"variant": variant, "seed": params.seed, "experiment": experiment.name,
            "timestamp": experiment.timestamp}
    rows = []
    for name in [TEACHER, *params.students]:  # the order the user wrote the chain in
        path = str(metrics_path(name))
        if path not in experiment.metrics:
            raise BanError(f"experiment {experiment.name}: {path} is missing")
        rows.append(StudyRow(**base, name=name, kind=kind_of(params, name),
                             teacher=params.students[name].teacher if name != TEACHER else "",
                             network=_network(params, name), metrics=experiment.metrics[path]))
    members = params.ensemble_members()
    network = _network(params, members[0]) if members else ""
    for name, values in experiment.metrics.get(ENSEMBLE_FILE, {}).items():
        rows.append(StudyRow(**base, name=name, kind=Kind.ENSEMBLE, teacher="", network=network,
                             metrics=values))
    return rows


def kind_of(params: Params, name: str) -> Kind:
    """The teacher, a student (it learns from its teacher), or a control (its objective never reads one)."""
    if name == TEACHER:
        return Kind.TEACHER
    return Kind.STUDENT if learns_from_teacher(params.generation(name)) else Kind.CONTROL


def _network(params: Params, name: str) -> str:
    return json.dumps(params.generation(name).model, sort_keys=True)


def study_frame(experiments: list[FinishedExperiment]) -> tuple[pd.DataFrame, int]:
    """The long table (one row per experiment and network), and how many repeated runs were dropped.

    Rows are in the order the experiments were made, so the first variant is the oldest; a variant
    run twice with the same seed keeps its newest experiment.
    """
    experiments = sorted(experiments, key=lambda experiment: experiment.timestamp)
    labels = variant_labels(experiments)
    frame = pd.DataFrame([row.to_dict() for experiment in experiments
                          for row in experiment_rows(experiment, labels[experiment.name])])
    newest = frame.drop_duplicates(["variant", "seed", "name"], keep="last")
    return newest.reset_index(drop=True), len(frame) - len(newest)


def headline_metric(frame: pd.DataFrame) -> str:
    """The headline metric the study's networks report (test error, test perplexity)."""
    present = [metric for metric in headline_metrics() if metric in frame]
    if not present:
        raise BanError(f"no headline metric ({', '.join(headline_metrics())}) in the experiments' metrics")
    return present[0]


def summary(frame: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Mean, sd (n - 1) and count over seeds per variant and network, in chain order."""
    present = [metric for metric in metrics if metric in frame]
    grouped = frame.groupby(["variant", "name"], sort=False)[present]
    table = grouped.agg(["mean", "std", "count"])
    table.columns = [f"{metric}_{statistic}" for metric, statistic in table.columns]
    return table.reset_index()

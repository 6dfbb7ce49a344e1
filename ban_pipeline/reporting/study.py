"""Multi-seed studies: finished DVC experiments to tables of mean ± sd, paired differences and a figure.

A study is a set of experiments of one chain (``dvc exp run --queue -S 'seed=range(0,5)'``), possibly
over several variants (other ``kd`` settings, architectures, datasets). Experiments are grouped into
variants by the params that differ between them, ``seed`` aside; within a variant, the networks of one
seed are paired, so a student is compared with its teacher and with the control of the same seed
(the control is any student whose kd mode is ``none``). Between variants, a network is compared with
the network of the same name in the first variant, again seed by seed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import textwrap
import warnings
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from scipy import stats

from ban.core.config import TEACHER, Params, params_from_mapping
from ban.core.errors import BanError
from ban.core.paths import metrics_path
from ban.objectives import learns_from_teacher
from ban.tasks import headline_metrics, metric_name
from ban_pipeline.reporting.record import experiment_name, is_finished
from ban_pipeline.reporting.results import Kind, save_figure

ENSEMBLE_FILE = str(metrics_path("ensemble"))
TRAIN_ERROR = metric_name("train", "error")  # beside the headline metric: how well each network fit


@dataclass(frozen=True)
class Run:
    """One finished experiment: its name, params.yaml as a mapping, and its metrics files by path."""

    name: str
    timestamp: str
    params: dict[str, Any]
    metrics: dict[str, dict[str, Any]]


class Role(StrEnum):
    """What a comparison's reference is to the network compared."""

    GEN0 = "gen0"  # the chain's first teacher
    TEACHER = "teacher"  # the network's own teacher
    CONTROL = "control"  # a control of the same network
    VARIANT = "variant"  # the same network in the first variant


@dataclass(frozen=True)
class Comparison:
    """``name`` of ``variant`` minus ``reference`` of ``reference_variant``, paired by seed.

    ``role`` says what the reference is: ``gen0`` (the first teacher), ``teacher`` (the network's own
    teacher, when it is not gen0), ``control`` (the same network trained without a teacher) or
    ``variant`` (the same network in the first variant).
    """

    variant: str
    name: str
    reference_variant: str
    reference: str
    role: Role


ROLES = (Role.GEN0, Role.TEACHER, Role.CONTROL)  # the comparisons within a variant, in table order


def finished_runs(show: list[dict[str, Any]]) -> tuple[list[Run], list[str]]:
    """The experiments of ``dvc exp show --json`` that have results, and the names of the others.

    An experiment run by the queue keeps its executor, whose state says whether it succeeded;
    queued, running and failed ones are left out. Baselines and the workspace are not experiments.
    """
    runs, skipped = [], []
    for baseline in show:
        for experiment in baseline.get("experiments") or []:
            name = experiment_name(experiment)
            if not is_finished(experiment):
                skipped.append(name)
                continue
            data = experiment["revs"][0]["data"]
            metrics = {path: entry["data"] for path, entry in (data.get("metrics") or {}).items()
                       if "data" in entry}
            params = data["params"]["params.yaml"]["data"]
            runs.append(Run(name, data.get("timestamp") or "", params, metrics))
    return runs, skipped


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys to scalar values; lists and empty mappings become their JSON text."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = json.dumps(value) if isinstance(value, list | dict) else value
    return flat


def variant_labels(runs: list[Run]) -> dict[str, str]:
    """A label per experiment naming the params that set its variant apart (``seed`` excluded).

    The keys of the chain's shape (``students.*``, ``ensemble.*``) are left out of the label when the
    other keys already tell the variants apart, so that a label stays readable when two variants have
    different chains.
    """
    flat = {run.name: flatten(run.params) for run in runs}
    keys = sorted({key for values in flat.values() for key in values} - {"seed"})
    differing = [key for key in keys if len({repr(values.get(key)) for values in flat.values()}) > 1]
    if not differing:
        return {name: "all" for name in flat}
    full = {name: _label(values, differing) for name, values in flat.items()}
    short_keys = [key for key in differing if not key.startswith(("students.", "ensemble."))]
    short = {name: _label(values, short_keys) for name, values in flat.items()}
    distinct = short_keys and len(set(short.values())) == len(set(full.values()))
    return short if distinct else full


def _label(values: dict[str, Any], keys: list[str]) -> str:
    return ", ".join(f"{key}={values.get(key, '-')}" for key in keys)


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


def network_metrics(run: Run, network: str) -> dict[str, Any]:
    """A generation's or an ensemble's numbers in ``run``, from its stage's metrics file (``{}`` if none)."""
    return run.metrics.get(str(metrics_path(network))) or run.metrics.get(ENSEMBLE_FILE, {}).get(network, {})


def run_rows(run: Run, variant: str) -> list[StudyRow]:
    """One row per generation and ensemble of ``run``; a missing metrics file is a BanError."""
    try:
        params = params_from_mapping(run.params)
    except BanError as error:
        raise BanError(f"experiment {run.name}: {error}") from None
    base = {"variant": variant, "seed": params.seed, "experiment": run.name, "timestamp": run.timestamp}
    rows = []
    for name in [TEACHER, *params.students]:  # the order the user wrote the chain in
        path = str(metrics_path(name))
        if path not in run.metrics:
            raise BanError(f"experiment {run.name}: {path} is missing")
        rows.append(StudyRow(**base, name=name, kind=_kind(params, name),
                             teacher=params.students[name].teacher if name != TEACHER else "",
                             network=_network(params, name), metrics=run.metrics[path]))
    members = params.ensemble_members()
    network = _network(params, members[0]) if members else ""
    for name, values in run.metrics.get(ENSEMBLE_FILE, {}).items():
        rows.append(StudyRow(**base, name=name, kind=Kind.ENSEMBLE, teacher="", network=network,
                             metrics=values))
    return rows


def _kind(params: Params, name: str) -> Kind:
    """The teacher, a student (it learns from its teacher), or a control (its objective never reads one)."""
    if name == TEACHER:
        return Kind.TEACHER
    return Kind.STUDENT if learns_from_teacher(params.generation(name)) else Kind.CONTROL


def _network(params: Params, name: str) -> str:
    return json.dumps(params.generation(name).model, sort_keys=True)


def study_frame(runs: list[Run]) -> tuple[pd.DataFrame, int]:
    """The long table (one row per experiment and network), and how many repeated runs were dropped.

    Rows are in the order the experiments were made, so the first variant is the oldest; a variant
    run twice with the same seed keeps its newest experiment.
    """
    runs = sorted(runs, key=lambda run: run.timestamp)
    labels = variant_labels(runs)
    frame = pd.DataFrame([row.to_dict() for run in runs for row in run_rows(run, labels[run.name])])
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


def comparisons(frame: pd.DataFrame) -> list[Comparison]:
    """Within each variant: every student and ensemble against gen0, its own teacher and each
    control of the same network (a control only against gen0); between variants: each network
    against the same network of the first variant."""
    found = []
    variants = list(dict.fromkeys(frame["variant"]))
    for variant in variants:
        chain = frame[frame["variant"] == variant].drop_duplicates("name")
        controls = chain[chain["kind"] == Kind.CONTROL]
        for row in chain[chain["kind"] != Kind.TEACHER].itertuples():
            found.append(Comparison(variant, row.name, variant, TEACHER, Role.GEN0))
            if row.teacher not in ("", TEACHER):
                found.append(Comparison(variant, row.name, variant, row.teacher, Role.TEACHER))
            if row.kind != Kind.CONTROL:
                found += [Comparison(variant, row.name, variant, control, Role.CONTROL)
                          for control in controls.loc[controls["network"] == row.network, "name"]]
        if variant != variants[0]:
            reference_names = set(frame.loc[frame["variant"] == variants[0], "name"])
            found += [Comparison(variant, name, variants[0], name, Role.VARIANT) for name in chain["name"]
                      if name in reference_names]
    return found


def paired_difference(frame: pd.DataFrame, comparison: Comparison, metric: str) -> dict[str, Any]:
    """The difference per seed, its mean and sd, and a paired t-test and a Wilcoxon signed-rank test."""
    a = _per_seed(frame, comparison.variant, comparison.name, metric)
    b = _per_seed(frame, comparison.reference_variant, comparison.reference, metric)
    pairs = pd.concat([a, b], axis=1, join="inner", keys=["a", "b"]).dropna()
    difference = pairs["a"] - pairs["b"]
    t_test, wilcoxon = paired_tests(list(pairs["a"]), list(pairs["b"]))
    return {"variant": comparison.variant, "name": comparison.name,
            "reference_variant": comparison.reference_variant, "reference": comparison.reference,
            "role": comparison.role, "n": len(difference), "mean": difference.mean(), "sd": difference.std(),
            "t_test_p": t_test, "wilcoxon_p": wilcoxon}


def _per_seed(frame: pd.DataFrame, variant: str, name: str, metric: str) -> pd.Series:
    rows = frame[(frame["variant"] == variant) & (frame["name"] == name)]
    return rows.set_index("seed")[metric] if metric in rows else pd.Series(dtype=float)


def paired_tests(a: list[float], b: list[float]) -> tuple[float, float]:
    """Two-sided p-values of the paired t-test and of the Wilcoxon signed-rank test (exact for small n).

    NaN where a test is undefined: fewer than two pairs, or no difference at all.
    """
    differences = [x - y for x, y in zip(a, b, strict=True)]
    if len(differences) < 2 or all(d == 0 for d in differences):
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant non-zero differences: t is infinite
        t_test = float(stats.ttest_rel(a, b).pvalue)
        wilcoxon = float(stats.wilcoxon(differences).pvalue)
    return t_test, wilcoxon


def differences(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Every comparison of :func:`comparisons` on ``metric``; empty when the metric is absent."""
    if metric not in frame:
        return pd.DataFrame()
    return pd.DataFrame([paired_difference(frame, c, metric) for c in comparisons(frame)])


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
    differences to gen0, to its own teacher and to its control: mean ± sd (t-test p, Wilcoxon p)."""
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
            cells.append("; ".join(_difference(match) + (f" vs {match.reference}" if named else "")
                                   for match in matches.itertuples()))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def between_markdown(paired: pd.DataFrame) -> str:
    """Each network minus the same network of the first variant, seed by seed; empty for one variant."""
    between = paired[paired["role"] == Role.VARIANT] if len(paired) else paired
    if not len(between):
        return ""
    lines = ["| variant | network | minus the first variant |", "|---|---|---|"]
    lines += [f"| {row.variant} | {row.name} | {_difference(row)} |" for row in between.itertuples()]
    return "\n".join(lines)


def _cell(table: pd.DataFrame, index: Any, metric: str) -> str:
    if f"{metric}_mean" not in table or not table.loc[index, f"{metric}_count"]:
        return ""
    return f"{mean_sd(table.loc[index, f'{metric}_mean'], table.loc[index, f'{metric}_std'])} " \
           f"({table.loc[index, f'{metric}_count']})"


def _difference(row: Any) -> str:
    return f"{mean_sd(row.mean, row.sd)} ({p_value(row.t_test_p)}, {p_value(row.wilcoxon_p)})"


def p_value(value: float) -> str:
    if math.isnan(value):
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


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

"""Finished DVC experiments, read from ``dvc exp show --json``, and the variants they form.

A study is a set of experiments of one chain (``dvc exp run --queue -S 'seed=range(0,5)'``), possibly
over several variants (other ``kd`` settings, architectures, datasets). Experiments are grouped into
variants by the params that differ between them, ``seed`` aside.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ban_pipeline.reporting.record import experiment_name, is_finished


@dataclass(frozen=True)
class FinishedExperiment:
    """One finished experiment: its name, params.yaml as a mapping, and its metrics files by path."""

    name: str
    timestamp: str
    params: dict[str, Any]
    metrics: dict[str, dict[str, Any]]


def finished_experiments(show: list[dict[str, Any]]) -> tuple[list[FinishedExperiment], list[str]]:
    """The experiments of ``dvc exp show --json`` that have results, and the names of the others.

    An experiment run by the queue keeps its executor, whose state says whether it succeeded;
    queued, running and failed ones are left out. Baselines and the workspace are not experiments.
    """
    finished, skipped = [], []
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
            finished.append(FinishedExperiment(name, data.get("timestamp") or "", params, metrics))
    return finished, skipped


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


def variant_labels(experiments: list[FinishedExperiment]) -> dict[str, str]:
    """A label per experiment naming the params that set its variant apart (``seed`` excluded).

    The keys of the chain's shape (``students.*``, ``ensemble.*``) are left out of the label when the
    other keys already tell the variants apart, so that a label stays readable when two variants have
    different chains.
    """
    flat = {experiment.name: flatten(experiment.params) for experiment in experiments}
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

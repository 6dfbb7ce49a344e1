"""A study's record: the finished experiments of one launch, kept in a committed file as they land.

A study that outlasts a machine (hours of CPU, a cluster lent for a day) is committed piece by piece:
each time some of its experiments finish, they are merged into the record, a file in the format of
``dvc exp show --json``. The aggregate of the committed record is the study's result, and another
machine launches only what the record lacks. An experiment is known by its name (``<launch>-<index>-
<overrides>``); its newer run replaces the recorded one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ban.core.errors import BanError
from ban.core.files import save_json


def is_finished(experiment: dict[str, Any]) -> bool:
    """An experiment of ``dvc exp show --json`` that has results (not queued, running or failed)."""
    rev = experiment["revs"][0]
    params = ((rev.get("data") or {}).get("params") or {}).get("params.yaml", {}).get("data")
    state = (experiment.get("executor") or {}).get("state", "success")
    return state == "success" and not rev.get("error") and bool(params)


def experiment_name(experiment: dict[str, Any]) -> str:
    rev = experiment["revs"][0]
    return experiment.get("name") or rev.get("name") or rev["rev"][:7]


def of_launch(show: list[dict[str, Any]], launch: str) -> list[dict[str, Any]]:
    """``show`` with only the experiments the launch ``--name launch`` made (named ``launch-...``)."""
    return [{**baseline, "experiments": [experiment for experiment in baseline.get("experiments") or []
                                         if experiment_name(experiment).startswith(f"{launch}-")]}
            for baseline in show]


def merged(record: list[dict[str, Any]], show: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The record with the finished experiments of ``show`` added, each under its baseline commit; an
    experiment already recorded under the same name is replaced by the one in ``show``."""
    new = {experiment_name(experiment): (baseline["rev"], experiment) for baseline in show
           for experiment in baseline.get("experiments") or [] if is_finished(experiment)}
    kept = [(baseline["rev"], experiment) for baseline in record for experiment in baseline["experiments"]
            if experiment_name(experiment) not in new]
    baselines: dict[str, list[dict[str, Any]]] = {}
    for rev, experiment in kept + list(new.values()):
        baselines.setdefault(rev, []).append(experiment)
    return [{"rev": rev, "experiments": experiments} for rev, experiments in baselines.items()]


def read_record(path: Path) -> list[dict[str, Any]]:
    """The record at ``path``, empty when there is none yet."""
    if not path.exists():
        return []
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise BanError(f"{path}: not a study record (`dvc exp show --json`): {error}") from None
    if not isinstance(record, list) or not all(isinstance(baseline, dict) and "rev" in baseline
                                               and isinstance(baseline.get("experiments"), list)
                                               for baseline in record):
        raise BanError(f"{path}: not a study record (`dvc exp show --json`): a list of baselines expected")
    return record


def update_record(path: Path, show: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Merge ``show``'s finished experiments into the record at ``path`` (written whole or not at all);
    return the record and the names it gained."""
    before = read_record(path)
    record = merged(before, show)
    known = {experiment_name(e) for baseline in before for e in baseline["experiments"]}
    gained = [experiment_name(e) for baseline in record for e in baseline["experiments"]
              if experiment_name(e) not in known]
    save_json(record, path)
    return record, gained

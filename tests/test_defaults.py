"""One source for each default: the typed config's defaults are what ``params.yaml`` states, and the
paths the stages write (``ban.core.paths``) are the outputs ``dvc.yaml`` declares."""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml
from project import ROOT

from ban.core import paths
from ban.core.config import TEACHER, Params, params_from_mapping

FREE_FORM = ("model", "students")  # mappings whose whole value is the default, compared as a whole


def leaves(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and key not in FREE_FORM:
            found |= leaves(value, f"{prefix}{key}.")
        else:
            found[f"{prefix}{key}"] = value
    return found


def test_the_config_defaults_are_the_values_params_yaml_states() -> None:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    defaults = leaves(dataclasses.asdict(Params()))
    assert sorted(leaves(raw)) == sorted(defaults), "params.yaml and the config name different keys"
    stated = leaves(dataclasses.asdict(params_from_mapping(raw)))  # students as the config reads them
    differing = {key: (stated[key], defaults[key]) for key in stated if stated[key] != defaults[key]}
    assert differing == {}, f"params.yaml value vs code default: {differing}"


def declared_outputs(stage: dict[str, Any]) -> set[str]:
    entries = [*stage.get("outs", []), *stage.get("metrics", []), *stage.get("plots", [])]
    return {next(iter(entry)) if isinstance(entry, dict) else entry for entry in entries}


def generation_outputs(generation: str) -> set[str]:
    return {str(paths.model_path(generation)), str(paths.predictions_path(generation)),
            str(paths.live_dir(generation) / "metrics.json"), str(paths.metrics_path(generation)),
            str(paths.live_dir(generation) / "plots/metrics")}


def test_the_stages_write_where_dvc_yaml_says() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert declared_outputs(stages["prepare"]) == {str(paths.PREPARED)}
    assert declared_outputs(stages[paths.stage_name(TEACHER)]) == generation_outputs(TEACHER)
    assert declared_outputs(stages["student"]["do"]) == generation_outputs("${key}")
    assert declared_outputs(stages["ensemble"]) == {str(paths.ENSEMBLE), str(paths.metrics_path("ensemble"))}
    assert declared_outputs(stages["evaluate"]) == {str(path) for path in (
        paths.SUMMARY, paths.AGREEMENT, paths.RESULTS_TABLE, paths.GENERATIONS_FIGURE, paths.ANALYSIS_FIGURE)}
    assert paths.stage_name("gen1") == "student@gen1" and "foreach" in stages["student"]

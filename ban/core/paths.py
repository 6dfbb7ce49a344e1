"""Where stages read and write: one place, matching the outs in dvc.yaml."""

from __future__ import annotations

from pathlib import Path

from ban.core.config import TEACHER

PARAMS = Path("params.yaml")
PREPARED = Path("data/prepared")
ENSEMBLE = Path("ensemble/predictions.pt")
SUMMARY = Path("metrics/summary.json")  # every network's numbers in one file (the gate); not a DVC metric
AGREEMENT = Path("metrics/agreement.json")  # evaluate's own metric: each student against its teacher
RESULTS_TABLE = Path("reports/results.md")
GENERATIONS_FIGURE = Path("reports/generations.png")
ANALYSIS_FIGURE = Path("reports/gradients.png")
CODE_RECORDS = Path("code")  # per stage, the code its params select (ban.training.sources)
PREPARE = "prepare"


def model_path(generation: str) -> Path:
    return Path("models") / f"{generation}.pt"


def predictions_path(generation: str) -> Path:
    return Path("preds") / f"{generation}.pt"


def metrics_path(name: str) -> Path:
    return Path("metrics") / f"{name}.json"


def live_dir(generation: str) -> Path:
    return Path("dvclive") / generation


def stage_name(generation: str) -> str:
    """The dvc.yaml stage that makes a generation's files."""
    return "teacher" if generation == TEACHER else f"student@{generation}"


def code_record_path(stage: str) -> Path:
    """``code/prepare.json``, ``code/gen1.json``: what the ``validate`` stage records for a stage."""
    return CODE_RECORDS / f"{stage}.json"

"""The ``validate`` stage's records of the code each stage's params select (``code/<stage>.json``).

Each stage depends on its record in ``dvc.yaml``; ``validate`` runs on every ``dvc repro`` and rewrites
the records, so a record changes, and its stage re-runs, exactly when a module the stage selects changes.
"""

from __future__ import annotations

import shutil

from ban.core.config import Params
from ban.core.files import save_json
from ban.core.paths import CODE_RECORDS, PREPARE, code_record_path
from ban.datasets import DATASETS
from ban.training.sources import Sources, generation_sources, selected_sources


def stage_sources(params: Params) -> dict[str, Sources]:
    """What each stage of the chain selects: ``prepare`` its dataset's module, each generation its own."""
    dataset = DATASETS.module_of(params.data.name, "data.name")
    sources = {PREPARE: selected_sources([dataset], "stages.prepare")}
    sources.update({name: generation_sources(params, name) for name in params.generations()})
    return sources


def write_code_records(params: Params) -> list[str]:
    """Write ``code/<stage>.json`` for every stage, and nothing else there; return the stages."""
    records = {stage: sources.record() for stage, sources in stage_sources(params).items()}
    shutil.rmtree(CODE_RECORDS, ignore_errors=True)  # a removed student's record goes with it
    for stage, record in records.items():
        save_json(record, code_record_path(stage))
    return list(records)

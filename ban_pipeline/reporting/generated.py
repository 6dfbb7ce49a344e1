"""The figures the README and the docs quote, generated from the committed records, one per block name.

Every committed study (a folder of ``reports/studies`` holding ``experiments.json``) gives the block
``<folder>-study-table``: its tables of ``study.md``, re-aggregated from the saved experiments. Besides
them: ``cifar10-32-crops-recipe-table`` (the crops teacher of seed 0, on which its recipe was chosen)
and ``regimes-table`` (``stages.regimes``' table). Paths are relative to the project root.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ban.core.config import TEACHER
from ban.core.errors import BanError
from ban_pipeline.reporting.experiments import FinishedExperiment, finished_experiments
from ban_pipeline.reporting.regimes import REGIMES, all_points, load_regimes, regimes_markdown
from ban_pipeline.reporting.study import Study, aggregate_study
from ban_pipeline.reporting.study_markdown import LEGEND, variant_markdown

STUDIES = Path("reports/studies")
RECORD = "experiments.json"
CROPS = STUDIES / "cifar10-32-crops"


@dataclass(frozen=True)
class GeneratedBlock:
    name: str
    sources: tuple[Path, ...]  # the record folders whose numbers it shows
    render: Callable[[], str]  # the block's body, each line ending in a newline


@functools.cache
def saved_experiments(folder: Path) -> tuple[list[FinishedExperiment], list[str]]:
    """The finished experiments saved in ``folder/experiments.json``, and the names of the others."""
    record = folder / RECORD
    if not record.exists():
        raise BanError(f"{folder}: not a study record (no {RECORD})")
    return finished_experiments(json.loads(record.read_text()))


@functools.cache
def reaggregated(folder: Path) -> Study:
    """The study of the experiments saved in ``folder``, aggregated afresh."""
    return aggregate_study(*saved_experiments(folder))


def study_tables(folder: Path) -> str:
    """Each variant's table of ``study.md`` (under its label where there are several), and the legend."""
    study = reaggregated(folder)
    variants = list(dict.fromkeys(study.frame["variant"]))
    parts = [LEGEND.format(metric=study.metric)]
    for variant in variants:
        label = [f"*{variant}*:"] if len(variants) > 1 else []
        parts += [*label, variant_markdown(study.summary, study.differences, variant, study.metric)]
    return "\n\n".join(parts) + "\n"


def crops_recipe_table() -> str:
    """The crops study's teacher of seed 0, the seed its recipe was chosen on (on the validation split)."""
    frame = reaggregated(CROPS).frame
    teacher = frame[(frame["name"] == TEACHER) & (frame["seed"] == 0)].iloc[0]
    experiment = next(e for e in saved_experiments(CROPS)[0] if e.name == teacher["experiment"])
    crops = experiment.params["train"]["augment"]["crop_padding"]
    return ("| crops | epochs | teacher training error % | validation error % |\n|---|---|---|---|\n"
            f"| {crops} pixels (the preset) | {int(teacher['epochs'])} | {teacher['train_error']:.2f} | "
            f"{teacher['valid_error']:.2f} |\n")


def regimes_table() -> str:
    return regimes_markdown(all_points(load_regimes(REGIMES))) + "\n"


def generated_blocks() -> dict[str, GeneratedBlock]:
    """Every generated block, by name."""
    studies = sorted(path.parent for path in STUDIES.glob(f"*/{RECORD}"))
    blocks = [GeneratedBlock(f"{folder.name}-study-table", (folder,), functools.partial(study_tables, folder))
              for folder in studies]
    regime_studies = tuple(dict.fromkeys(Path(regime.study) for regime in load_regimes(REGIMES)))
    blocks += [GeneratedBlock("cifar10-32-crops-recipe-table", (CROPS,), crops_recipe_table),
               GeneratedBlock("regimes-table", (*regime_studies, STUDIES / "regimes"), regimes_table)]
    return {block.name: block for block in blocks}

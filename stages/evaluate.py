"""Stage ``evaluate``: metrics, a results table and figures for every generation and ensemble.

A pure function of the saved predictions: no network is run again.
"""

from __future__ import annotations

from ban.core.config import TEACHER, load_params
from ban.core.files import load_torch, save_json
from ban.core.paths import (
    AGREEMENT,
    ANALYSIS_FIGURE,
    ENSEMBLE,
    GENERATIONS_FIGURE,
    PARAMS,
    RESULTS_TABLE,
    SUMMARY,
)
from ban.predictions import EnsemblePredictions, load_generation_predictions
from ban.tasks import TASKS
from ban_pipeline.reporting.results import (
    agreement,
    kind_of_record,
    plot_analysis,
    plot_generations,
    results_table,
    write_markdown,
)
from stages.cli import run_process, stage_arguments

PARAMS_READ = "students, data.name, model.arch, kd.mode"


def main(argv: list[str]) -> None:
    stage_arguments("stages.evaluate", __doc__, PARAMS_READ).parse_args(argv)
    params = load_params(PARAMS)
    saved = {name: load_generation_predictions(name) for name in params.generations()}
    saved_ensembles = load_torch(ENSEMBLE, "ensemble predictions", "stage ensemble (dvc repro)")["ensembles"]
    ensembles = {name: EnsemblePredictions.from_dict(record) for name, record in saved_ensembles.items()}
    reported = saved[TEACHER].reported_split
    task = TASKS.get(saved[TEACHER].task, "task")
    generations = {}
    for name, record in saved.items():
        row = {"kind": kind_of_record(record), "teacher": record.teacher or "", **record.metrics.to_dict()}
        if record.teacher and task.reports_agreement:
            row["agreement"] = agreement(record.splits[reported], saved[record.teacher].splits[reported])
        generations[name] = row
    ensemble_rows = {name: {"members": "+".join(e.members), **e.metrics} for name, e in ensembles.items()}
    table = results_table(generations, ensemble_rows)
    metric = task.headline
    title = f"{params.data.name}, {params.model['arch']}, kd.mode={params.kd.mode}"
    write_markdown(table, RESULTS_TABLE, title)
    plot_generations(table, metric, GENERATIONS_FIGURE, title)
    plot_analysis({name: saved[name].history for name in params.students}, ANALYSIS_FIGURE)
    summary = {name: {k: v for k, v in row.items() if isinstance(v, int | float)}
               for name, row in {**generations, **ensemble_rows}.items()}
    save_json(summary, SUMMARY)
    # the one number only this stage makes; the others are the train and ensemble stages' metrics
    save_json({name: {"agreement": row["agreement"]} for name, row in generations.items()
               if "agreement" in row}, AGREEMENT)
    print(RESULTS_TABLE.read_text())


if __name__ == "__main__":
    run_process(main)

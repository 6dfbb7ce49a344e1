"""Stage ``ensemble``: BANE and the running ensembles Ens*2, Ens*3, ... from the generations' predictions."""

from __future__ import annotations

from ban.core.config import load_params
from ban.core.files import save_json, save_torch
from ban.core.paths import ENSEMBLE, PARAMS, metrics_path
from ban.ensemble import ensemble_records
from ban.predictions import load_generation_predictions
from stages.cli import run_process, stage_arguments

PARAMS_READ = "ensemble, students"


def main(argv: list[str]) -> None:
    stage_arguments("stages.ensemble", __doc__, PARAMS_READ).parse_args(argv)
    params = load_params(PARAMS)
    members = params.ensemble_members()
    ensembles = ensemble_records({name: load_generation_predictions(name) for name in members})
    metrics = {name: record.metrics for name, record in ensembles.items()}
    records = {name: ensemble.to_dict() for name, ensemble in ensembles.items()}
    save_torch({"members": members, "ensembles": records}, ENSEMBLE)
    save_json(metrics, metrics_path("ensemble"))
    for name, values in metrics.items():
        print(f"{name} ({' + '.join(ensembles[name].members)}): "
              + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))
    if not metrics:
        print(f"{len(members)} member(s) ({', '.join(members) or 'no students'}): no ensemble to form")


if __name__ == "__main__":
    run_process(main)

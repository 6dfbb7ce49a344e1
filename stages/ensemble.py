"""Stage ``ensemble``: BANE and the running ensembles Ens*2, Ens*3, ... from the generations' predictions."""

from __future__ import annotations

from ban.core.config import load_params
from ban.core.files import load_torch, save_json, save_torch
from ban.core.paths import ENSEMBLE, PARAMS, metrics_path, predictions_path, stage_name
from ban.ensemble import ensemble_records
from stages.cli import run


def main(argv: list[str]) -> None:
    params = load_params(PARAMS)
    members = params.ensemble_members()
    saved = {name: load_torch(predictions_path(name), "predictions", f"stage {stage_name(name)} (dvc repro)")
             for name in members}
    ensembles = ensemble_records(saved)
    metrics = {name: record["metrics"] for name, record in ensembles.items()}
    save_torch({"members": members, "ensembles": ensembles}, ENSEMBLE)
    save_json(metrics, metrics_path("ensemble"))
    for name, values in metrics.items():
        print(f"{name} ({' + '.join(ensembles[name]['members'])}): "
              + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))
    if not metrics:
        print(f"{len(members)} member(s) ({', '.join(members) or 'no students'}): no ensemble to form")


if __name__ == "__main__":
    run(main)

"""Stage ``ensemble``: BANE and the running ensembles Ens*2, Ens*3, ... from the generations' predictions."""

from __future__ import annotations

from ban.checkpoint import load_torch, save_json, save_torch
from ban.config import load_params
from ban.domains import Predictions
from ban.ensemble import running_ensembles
from ban.generation import split_metrics
from ban.paths import ENSEMBLE, PARAMS, metrics_path, predictions_path, stage_name
from stages.cli import run


def main(argv: list[str]) -> None:
    params = load_params(PARAMS)
    members = params.ensemble_members()
    saved = {name: load_torch(predictions_path(name), "predictions", f"stage {stage_name(name)} (dvc repro)")
             for name in members}
    splits = list(saved[members[0]]["splits"])
    ensembles: dict[str, dict] = {}
    for split in splits:
        per_member = {name: Predictions.from_dict(saved[name]["splits"][split]) for name in members}
        for ens_name, predictions in running_ensembles(per_member).items():
            entry = ensembles.setdefault(ens_name, {"members": members[:int(ens_name[3:])], "splits": {},
                                                    "metrics": {}})
            entry["splits"][split] = predictions.to_dict()
            entry["metrics"].update(split_metrics(split, predictions.error, predictions.nll, params.task))
    metrics = {name: entry["metrics"] for name, entry in ensembles.items()}
    save_torch({"members": members, "ensembles": ensembles}, ENSEMBLE)
    save_json(metrics, metrics_path("ensemble"))
    for name, values in metrics.items():
        print(f"{name} ({' + '.join(ensembles[name]['members'])}): "
              + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))
    if not metrics:
        print(f"one member ({members[0]}): no ensemble to form")


if __name__ == "__main__":
    run(main)

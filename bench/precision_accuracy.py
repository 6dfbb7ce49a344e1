"""Does bf16 autocast cost accuracy? The embedded default's teacher trained in fp32 and in bf16.

    python -m bench.precision_accuracy --seeds 0 1 2

Reads ``params.yaml`` (digits, the ResNet teacher and its schedule), changes only the
seed and ``train.precision``, and trains generation 0 through ``ban.training.engine.Trainer`` on
the CPU, alternating fp32 and bf16 per seed. Prints the last epoch's test error of each
run, the mean and spread per precision, and writes JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ban.core.config import TEACHER, KDConfig, Params, load_params
from ban.datasets import prepare_dataset
from ban.nets import build_model
from ban.training.domain import make_domain
from ban.training.engine import EpochReport, Trainer

PRECISIONS = ("fp32", "bf16")


def train_teacher(params: Params, precision: str) -> dict[str, Any]:
    """Generation 0 as the teacher stage trains it, without writing files; last-epoch figures."""
    device = torch.device("cpu")
    train = dataclasses.replace(params.train, precision=precision)
    domain = make_domain(prepare_dataset(params.data), train, device, precision)
    generation = params.generation(TEACHER)
    torch.manual_seed(generation.seed)
    model = domain.prepare_model(build_model(generation.arch, generation.options, **domain.data_arguments()))
    trainer = Trainer(model, domain, train, KDConfig(mode="none"), seed=generation.seed, device=device,
                      precision=precision, generation=TEACHER)
    reports: list[EpochReport] = []
    started = time.perf_counter()
    trainer.run(reports.append)
    last = reports[-1]
    return {"seed": params.seed, "precision": precision, "test_error": last.eval["test"]["error"],
            "test_nll": last.eval["test"]["nll"], "train_error": last.train_error,
            "seconds": time.perf_counter() - started}


def summary(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation of the test error per precision."""
    result = {}
    for precision in PRECISIONS:
        mine = [r for r in runs if r["precision"] == precision]
        errors = [r["test_error"] for r in mine]
        result[precision] = {"mean": statistics.mean(errors),
                             "std": statistics.stdev(errors) if len(errors) > 1 else 0.0,
                             "seconds": statistics.mean(r["seconds"] for r in mine)}
    return result


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.precision_accuracy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/precision_accuracy.json"))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    runs = []
    for seed in args.seeds:
        for precision in PRECISIONS:
            runs.append(train_teacher(dataclasses.replace(params, seed=seed), precision))
            print(f"seed {seed} {precision}: test error {runs[-1]['test_error']:.2f}%  "
                  f"nll {runs[-1]['test_nll']:.4f}  ({runs[-1]['seconds']:.0f} s)", flush=True)
    figures = summary(runs)
    for precision, values in figures.items():
        print(f"{precision}: test error {values['mean']:.2f} +- {values['std']:.2f}% over {len(args.seeds)} "
              f"seeds, {values['seconds']:.0f} s per run")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs, "summary": figures}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])

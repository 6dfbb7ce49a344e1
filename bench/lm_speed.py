"""Training speed of language models through the project's engine: a plain step against a distillation step.

    python -m bench.lm_speed                                  # both families, CPU sizes
    python -m bench.lm_speed --sizes paper --device cuda      # the paper's networks
    python -m bench.lm_speed --precisions fp32 bf16           # both precisions
    python -m bench.lm_speed --repeats 1                      # one run instead of three
    python -m bench.lm_speed --compile                        # torch.compile the networks

Two students of the same family are trained side by side with ``Trainer.step`` on
``TextDomain``, window by window, on a random 10,000-word corpus (PTB's vocabulary size:
the softmax layer is most of the cost, and a step's speed does not depend on the words):

* ``plain``: the teacher's own step, cross-entropy to the next word (``kd.mode: none``);
* ``distill``: a BAN+L student step, the frozen teacher's forward included
  (``kd.mode: ban``, ``kd.label_weight: 1``, the language-model recipe).

The two steps alternate on every window, so both meet the same machine load; a run gives
median tokens/s and the median of the per-window ratios of their times. Runs are repeated
(``--repeats``, interleaved over the models) and the table shows the median run and every
run's ratio. A precision the device has no kernels for is reported, not measured.

Sizes (batch 32 for lstm and 20 for cnn_lstm, 35 steps unrolled, as in the paper):

* ``paper``: LSTM 2 x 1500 tied (about 51M parameters); Kim et al.'s large CNN-LSTM (about 19M);
* ``cpu``: the same papers' smaller models: Zaremba et al.'s medium LSTM (2 x 650, tied here,
  about 20M parameters) and Kim et al.'s small CNN-LSTM (filters 25 x width for widths 1-6,
  one highway layer, 2 x 300 LSTM, about 5M).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ban.core.config import KDConfig, OptimizerConfig, TrainConfig
from ban.core.errors import ConfigError
from ban.data.prepared import Prepared
from ban.nets import build_model, count_parameters
from ban.training.device import explain_refusals, resolve_device, resolve_precision
from ban.training.domain import make_domain
from ban.training.engine import Trainer
from bench.train_speed import machine, table

VOCAB = 10_000
WORD_WIDTH = 21  # PTB's longest word (19 letters) plus the begin and end markers
BPTT = 35
BATCH = {"lstm": 32, "cnn_lstm": 20}
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {"lstm": {}, "cnn_lstm": {}},  # the builders' defaults are the paper's networks
    # the same papers' smaller models: Zaremba et al.'s medium LSTM (2 x 650) and Kim et al.'s small CNN-LSTM
    "cpu": {"lstm": {"hidden": 650, "dropout": 0.5},
            "cnn_lstm": {"filter_widths": [1, 2, 3, 4, 5, 6], "filters": [25, 50, 75, 100, 125, 150],
                         "highway_layers": 1, "hidden": 300}},
}
KINDS = {"plain": KDConfig(mode="none"), "distill": KDConfig(mode="ban", label_weight=1.0)}
DEFAULT_STEPS = {"cuda": (50, 10), "cpu": (10, 2)}  # (timed windows, warm-up windows)


def random_corpus(windows: int, batch_size: int, seed: int) -> Prepared:
    """A corpus of random words in the prepared format, long enough for ``windows`` training windows."""
    generator = torch.Generator().manual_seed(seed)
    tokens = batch_size * (windows * BPTT + 1)
    meta = {"task": "lm", "name": "random", "vocab": [str(i) for i in range(VOCAB)], "chars": []}
    return Prepared(meta, {
        "train": torch.randint(VOCAB, (tokens,), generator=generator),
        "valid": torch.randint(VOCAB, (100,), generator=generator),
        "test": torch.randint(VOCAB, (100,), generator=generator),
        "word_chars": torch.randint(1, 60, (VOCAB, WORD_WIDTH), generator=generator),
    })


def measure(arch: str, sizes: str, precision: str, steps: int, warmup: int,
            device: torch.device, compile: bool = False) -> dict[str, Any]:
    """Seconds per window of a plain and of a distillation ``Trainer.step``, alternated window by window.

    Both students see the same windows under the same machine load, so their ratio is fair
    even on a busy machine; each runner carries its own hidden state, as in training.
    """
    precision = resolve_precision(precision, device)
    batch_size = BATCH[arch]
    train = TrainConfig(epochs=1, batch_size=batch_size, bptt=BPTT, clip_grad_norm=5.0, precision=precision,
                        optimizer=OptimizerConfig(lr=1.0, momentum=0.0, nesterov=False, weight_decay=0.0))
    domain = make_domain(random_corpus(warmup + steps, batch_size, seed=1), train, device, precision)

    def build(seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        model = domain.prepare_model(build_model(arch, SIZES[sizes][arch], **domain.data_arguments()))
        return torch.compile(model) if compile else model  # as the train stage does with train.compile

    teacher = build(0)
    trainers = {kind: Trainer(build(seed), domain, train, kd, seed=seed, device=device, precision=precision,
                              generation=kind, teacher=teacher if kind == "distill" else None)
                for seed, (kind, kd) in enumerate(KINDS.items(), start=1)}
    runners = {kind: (domain.runner(trainer.model), domain.runner(teacher) if trainer.teacher else None)
               for kind, trainer in trainers.items()}
    for runner in (r for pair in runners.values() for r in pair if r is not None):
        runner.reset(batch_size)
    seconds: dict[str, list[float]] = {kind: [] for kind in KINDS}
    cpu_seconds: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with explain_refusals(precision):
        for index, batch in enumerate(domain.train_batches(torch.Generator())):
            for kind, trainer in trainers.items():
                wall, cpu = time.perf_counter(), time.process_time()
                trainer.step(batch, *runners[kind])
                synchronize(device)
                if index >= warmup:
                    seconds[kind].append(time.perf_counter() - wall)
                    cpu_seconds[kind].append(time.process_time() - cpu)
    return {"arch": arch, "sizes": sizes, "device": device.type, "precision": precision, "compile": compile,
            "batch_size": batch_size, "params": count_parameters(teacher),
            "tokens_per_window": batch_size * BPTT, "seconds": seconds, "cpu_seconds": cpu_seconds}


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so that a step's time is its own."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def summarise(record: dict[str, Any]) -> dict[str, Any]:
    """Median tokens/s of each kind and the median of the per-window time ratios distill/plain.

    On the CPU the ratio of the process's CPU time is shown too: unlike wall time, other
    programs running on the machine barely change it.
    """
    seconds = record["seconds"]
    row: dict[str, Any] = {"model": record["arch"], "precision": record["precision"],
                           "params": record["params"], "batch": record["batch_size"]}
    for kind in KINDS:
        row[f"{kind} tok/s"] = record["tokens_per_window"] / statistics.median(seconds[kind])
    row["distill/plain time"] = median_ratio(seconds)
    if record["device"] == "cpu":
        row["distill/plain cpu time"] = median_ratio(record["cpu_seconds"])
    return row


def median_ratio(seconds: dict[str, list[float]]) -> float:
    return statistics.median(d / p for d, p in zip(seconds["distill"], seconds["plain"], strict=True))


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.lm_speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    parser.add_argument("--archs", nargs="+", choices=list(BATCH), default=list(BATCH))
    parser.add_argument("--sizes", choices=list(SIZES), help="default: paper on CUDA, cpu elsewhere")
    parser.add_argument("--precisions", nargs="+", default=["auto"],
                        help="each of auto | fp32 | bf16 (default: auto)")
    parser.add_argument("--steps", type=int, help="timed windows per kind (default: 10 on CPU, 50 on CUDA)")
    parser.add_argument("--warmup", type=int, help="untimed windows first (default: 2 on CPU, 10 on CUDA)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of each model; medians are shown (default: 3)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the students and the teacher")
    parser.add_argument("--out", type=Path, default=Path("bench/results/lm_speed.json"))
    return parser.parse_args(argv)


def median_run(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median distill/plain ratio, with every run's ratio beside it."""
    ranked = sorted(rows, key=lambda row: row["distill/plain time"])
    ratios = ", ".join(f"{row['distill/plain time']:.2f}" for row in rows)
    return {**ranked[(len(ranked) - 1) // 2], "runs": ratios}


def main(argv: list[str]) -> None:
    args = parse_arguments(argv)
    device = resolve_device(args.device)
    kind = "cuda" if device.type == "cuda" else "cpu"
    steps, warmup = DEFAULT_STEPS[kind]
    steps, warmup = args.steps or steps, warmup if args.warmup is None else args.warmup
    sizes = args.sizes or ("paper" if kind == "cuda" else "cpu")
    settings = [(arch, precision) for arch in args.archs for precision in args.precisions]
    records: list[dict[str, Any]] = []
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {setting: [] for setting in settings}
    refused: dict[tuple[str, str], str] = {}
    for repeat in range(1, args.repeats + 1):
        for arch, precision in (setting for setting in settings if setting not in refused):
            try:
                records.append(measure(arch, sizes, precision, steps, warmup, device, args.compile))
            except ConfigError as error:
                refused[(arch, precision)] = str(error)
                print(f"{arch} {precision}: not measured: {error}", flush=True)
                continue
            runs[(arch, precision)].append(summarise(records[-1]))
            print(f"run {repeat}/{args.repeats}: " + " ".join(
                f"{key} {value:,.2f}" if isinstance(value, float) else f"{key} {value}"
                for key, value in runs[(arch, precision)][-1].items()), flush=True)
    rows = [median_run(rows) for rows in runs.values() if rows]
    header = (f"{machine(device)}; torch {torch.__version__}; sizes {sizes}, bptt {BPTT}, vocabulary "
              f"{VOCAB:,}; medians of {steps} alternated windows after {warmup}; "
              f"the median of {args.repeats} runs")
    print(f"\n{header}\n\n{table(rows, list(rows[0])) if rows else 'nothing measured'}")
    for (arch, precision), reason in refused.items():
        print(f"{arch} {precision}: not measured: {reason}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(device), "torch": torch.__version__,
                                    "settings": {k: str(v) for k, v in vars(args).items()},
                                    "summary": rows,
                                    "refused": {f"{a} {p}": r for (a, p), r in refused.items()},
                                    "runs": records}, indent=1) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])

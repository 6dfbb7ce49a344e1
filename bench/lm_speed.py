"""Language-model training speed through the train stage's code: a plain epoch against a distillation one.

    python -m bench.lm_speed                                  # both families, CPU sizes
    python -m bench.lm_speed --sizes tiny --archs lstm        # the ptb-tiny preset's network
    python -m bench.lm_speed --sizes paper --device cuda      # the paper's networks
    python -m bench.lm_speed --precisions fp32 bf16           # both precisions
    python -m bench.lm_speed --repeats 1                      # one run instead of three
    python -m bench.lm_speed --compile                        # torch.compile the networks

Each way is trained in its own process, as the train stages are, with ``Trainer.train_epoch``
(what the stages run: the step, the logged figures, the gradient decomposition, the progress) on
``TextDomain``, over a random 10,000-word corpus (PTB's vocabulary size: the softmax layer is most
of the cost, and a step's speed does not depend on the words):

* ``plain``: the teacher's stage, cross-entropy to the next word (``kd.mode: none``);
* ``distill``: a BAN+L student's stage, the frozen teacher's forward included
  (``kd.mode: ban``, ``kd.label_weight: 1``, the language-model recipe).

A process trains a warm-up epoch of ``--warmup`` windows, then the timed epoch of ``--steps``
windows. Runs are repeated (``--repeats``), interleaved over models and ways, and the table shows
medians: tokens/s of each way and the distill/plain ratio of time per token, from wall time and (on
the CPU, where other programs on the machine barely change it) from the process's CPU time. A
precision the device has no kernels for is reported, not measured.

Sizes (35 steps unrolled, as in the papers):

* ``paper``: LSTM 2 x 1500 tied (about 51M parameters), batch 32; Kim et al.'s large CNN-LSTM
  (about 19M), batch 20;
* ``cpu``: the same papers' smaller models: Zaremba et al.'s medium LSTM (2 x 650, tied here,
  about 13M parameters), batch 32, and Kim et al.'s small CNN-LSTM (filters 25 x width for widths
  1-6, one highway layer, 2 x 300 LSTM, about 5M), batch 20;
* ``tiny``: the ``ptb-tiny`` preset's LSTM (2 x 200 tied, 2.65M), batch 20, and the small CNN-LSTM.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
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
from stages.cli import run

VOCAB = 10_000
WORD_WIDTH = 21  # PTB's longest word (19 letters) plus the begin and end markers
BPTT = 35
SMALL_CNN_LSTM = {"filter_widths": [1, 2, 3, 4, 5, 6], "filters": [25, 50, 75, 100, 125, 150],
                  "highway_layers": 1, "hidden": 300}
# size -> arch -> (the builder's options, batch size)
SIZES: dict[str, dict[str, tuple[dict[str, Any], int]]] = {
    "paper": {"lstm": ({}, 32), "cnn_lstm": ({}, 20)},  # the builders' defaults are the paper's networks
    "cpu": {"lstm": ({"hidden": 650, "dropout": 0.5}, 32), "cnn_lstm": (SMALL_CNN_LSTM, 20)},
    "tiny": {"lstm": ({"hidden": 200, "dropout": 0.0}, 20), "cnn_lstm": (SMALL_CNN_LSTM, 20)},
}
ARCHS = ("lstm", "cnn_lstm")
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


def measure(job: dict[str, Any]) -> dict[str, Any]:
    """Tokens/s of one way's timed epoch, in this process (a fresh one: see ``run_isolated``)."""
    device = resolve_device(job["device"])
    precision = resolve_precision(job["precision"], device)
    options, batch_size = SIZES[job["sizes"]][job["arch"]]
    train = TrainConfig(epochs=2, batch_size=batch_size, bptt=BPTT, clip_grad_norm=5.0, precision=precision,
                        optimizer=OptimizerConfig(lr=1.0, momentum=0.0, nesterov=False, weight_decay=0.0))
    warm = make_domain(random_corpus(job["warmup"], batch_size, seed=1), train, device, precision)
    timed = make_domain(random_corpus(job["steps"], batch_size, seed=2), train, device, precision)

    def build(seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        model = timed.prepare_model(build_model(job["arch"], options, **timed.data_arguments()))
        return torch.compile(model) if job["compile"] else model  # as the train stage does with train.compile

    distill = job["kind"] == "distill"
    teacher = build(0) if distill else None
    student = build(1)
    trainer = Trainer(student, warm, train, KINDS[job["kind"]], seed=1, device=device, precision=precision,
                      generation=job["kind"], teacher=teacher)
    with explain_refusals(precision):
        if job["warmup"]:
            trainer.train_epoch()
        trainer.domain = timed
        cpu = time.process_time()
        report = trainer.train_epoch()
        cpu = time.process_time() - cpu
    tokens = report.examples_per_s * report.seconds
    return {**job, "precision": precision, "params": count_parameters(student), "batch_size": batch_size,
            "tok_per_s": report.examples_per_s, "cpu_s_per_ktok": 1000 * cpu / tokens,
            "threads": torch.get_num_threads()}


def run_isolated(job: dict[str, Any]) -> dict[str, Any]:
    """``measure`` in a child process; a ConfigError there (a kernel the CPU lacks) comes back as one."""
    command = [sys.executable, "-m", "bench.lm_speed", "--one", json.dumps(job)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).parents[1])
    if result.returncode == 2 and result.stderr.startswith("error: "):
        raise ConfigError(result.stderr.removeprefix("error: ").strip())
    if result.returncode != 0:
        raise SystemExit(f"{job['arch']} {job['kind']} failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Median tokens/s of each way and the median over repeats of each repeat's distill/plain time ratio."""
    first = records[0]
    row: dict[str, Any] = {"model": first["arch"], "precision": first["precision"], "params": first["params"],
                           "batch": first["batch_size"], "threads": first["threads"]}
    by_kind = {kind: [r for r in records if r["kind"] == kind] for kind in KINDS}
    for kind, mine in by_kind.items():
        row[f"{kind} tok/s"] = statistics.median(r["tok_per_s"] for r in mine)
    pairs = list(zip(by_kind["plain"], by_kind["distill"], strict=True))
    ratios = [plain["tok_per_s"] / distill["tok_per_s"] for plain, distill in pairs]
    row["distill/plain time"] = statistics.median(ratios)
    if first["device"] == "cpu":
        row["distill/plain cpu time"] = statistics.median(
            distill["cpu_s_per_ktok"] / plain["cpu_s_per_ktok"] for plain, distill in pairs)
    row["runs"] = ", ".join(f"{ratio:.2f}" for ratio in ratios)
    return row


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.lm_speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    parser.add_argument("--archs", nargs="+", choices=ARCHS, default=list(ARCHS))
    parser.add_argument("--sizes", choices=list(SIZES), help="default: paper on CUDA, cpu elsewhere")
    parser.add_argument("--precisions", nargs="+", default=["auto"],
                        help="each of auto | fp32 | bf16 (default: auto)")
    parser.add_argument("--steps", type=int, help="timed windows per run (default: 10 on CPU, 50 on CUDA)")
    parser.add_argument("--warmup", type=int, help="untimed windows first (default: 2 on CPU, 10 on CUDA)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of each model and way; medians are shown (default: 3)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the students and the teacher")
    parser.add_argument("--out", type=Path, default=Path("bench/results/lm_speed.json"))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one measurement, JSON in and out
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_arguments(argv)
    if args.one:
        run(lambda _: print(json.dumps(measure(json.loads(args.one)))), [])  # errors as the stages give them
        return
    device = resolve_device(args.device)
    kind = "cuda" if device.type == "cuda" else "cpu"
    steps, warmup = DEFAULT_STEPS[kind]
    steps, warmup = args.steps or steps, warmup if args.warmup is None else args.warmup
    sizes = args.sizes or ("paper" if kind == "cuda" else "cpu")
    settings = [(arch, precision) for arch in args.archs for precision in args.precisions]
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {setting: [] for setting in settings}
    refused: dict[tuple[str, str], str] = {}
    for repeat in range(1, args.repeats + 1):
        for arch, precision in (setting for setting in settings if setting not in refused):
            try:
                for way in KINDS:
                    job = {"arch": arch, "sizes": sizes, "precision": precision, "kind": way,
                           "device": device.type, "steps": steps, "warmup": warmup, "compile": args.compile}
                    runs[(arch, precision)].append(run_isolated(job))
                    record = runs[(arch, precision)][-1]
                    print(f"run {repeat}/{args.repeats}: {arch} {record['precision']} {way}: "
                          f"{record['tok_per_s']:,.0f} tok/s, {record['cpu_s_per_ktok']:.3f} cpu s/1k tok",
                          flush=True)
            except ConfigError as error:
                refused[(arch, precision)] = str(error)
                print(f"{arch} {precision}: not measured: {error}", flush=True)
    rows = [summarise(records) for setting, records in runs.items() if records and setting not in refused]
    header = (f"{machine(device)}; torch {torch.__version__}; sizes {sizes}, bptt {BPTT}, vocabulary "
              f"{VOCAB:,}; each way in its own process, {steps} timed windows after {warmup}; "
              f"medians of {args.repeats} runs")
    print(f"\n{header}\n\n{table(rows, list(rows[0])) if rows else 'nothing measured'}")
    for (arch, precision), reason in refused.items():
        print(f"{arch} {precision}: not measured: {reason}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(device), "torch": torch.__version__,
                                    "settings": {k: str(v) for k, v in vars(args).items() if k != "one"},
                                    "summary": rows,
                                    "refused": {f"{a} {p}": r for (a, p), r in refused.items()},
                                    "runs": [r for rs in runs.values() for r in rs]}, indent=1) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])

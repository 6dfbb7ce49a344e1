"""Training speed of the project's engine against the ordinary way, on CIFAR-shaped random data.

    python -m bench.train_speed                              # default models, best device here
    python -m bench.train_speed --models resnet20 --steps 20 --repeats 3

Four ways to train each model are measured, each in a fresh process so that peak memory
belongs to one run (CPU: peak RSS of the training process; CUDA: max allocated):

* ``ours/ce`` and ``ours/ban``: a cross-entropy step and a BAN step (frozen teacher's forward
  included) through ``ban.training.engine.Trainer`` and ``ImageDomain``, in each of ``--precisions``
  (default: the one ``train.precision: auto`` picks here, and fp32);
* ``ordinary/ce`` and ``ordinary/ban``: the same training as most distillation repositories
  write it: torchvision transforms on PIL images, a DataLoader with worker processes, fp32,
  ``.item()`` after every step.

So the table compares the two ways at each one's default precision and at the same one (fp32),
one row per precision of ours (a single row where ``auto`` is fp32), with the threads each used.

Every run starts with ``--warmup`` untimed steps. Runs are interleaved model by model and
``--repeats`` times; the table shows medians, the JSON every run.

On a CPU shared with other jobs, run it with ``OMP_NUM_THREADS=1``: with more threads than
free cores, threads wait for each other (oneDNN's bf16 kernels spin while they wait) and a
run's speed varies several-fold from one run to the next.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ban.core.config import AugmentConfig, KDConfig, TrainConfig
from ban.data.images import channel_stats
from ban.data.prepared import Prepared
from ban.nets import build_model, count_parameters
from ban.training.device import resolve_device, resolve_precision
from ban.training.domain import Domain, make_domain
from ban.training.engine import Trainer

MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "resnet20": ("resnet", {"depth": 20, "width": 16}),
    "resnet56": ("resnet", {"depth": 56, "width": 16}),
    "wrn16-4": ("wrn", {"depth": 16, "widen": 4, "dropout": 0.3}),
    "wrn28-10": ("wrn", {"depth": 28, "widen": 10, "dropout": 0.3}),
    "densenet100-12": ("densenet", {"depth": 100, "growth": 12}),
}
# WRN-28-10 (36.5M parameters) takes minutes per step on a 2-core CPU: the CPU runs measure WRN-16-4.
DEFAULT_MODELS = {"cuda": ["resnet20", "resnet56", "wrn28-10", "densenet100-12"],
                  "cpu": ["resnet20", "resnet56", "wrn16-4", "densenet100-12"]}
DEFAULT_STEPS = {"cuda": (50, 10), "cpu": (5, 1)}  # (timed steps, warm-up steps)
WAYS = ("ours/ce", "ours/ban", "ordinary/ce", "ordinary/ban")
CLASSES = 10
SIDE = 32
PADDING = 4


@dataclass(frozen=True)
class Run:
    """One measurement, run in its own process."""

    model: str
    way: str  # one of WAYS
    device: str
    batch_size: int
    steps: int
    warmup: int
    workers: int
    precision: str
    compile: bool

    @property
    def kind(self) -> str:
        return self.way.split("/")[0]

    @property
    def distill(self) -> bool:
        return self.way.endswith("/ban")


def random_cifar(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random 3x32x32 uint8 images and labels: the speed of a step does not depend on content."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count, 3, SIDE, SIDE), dtype=torch.uint8, generator=generator)
    return images, torch.randint(0, CLASSES, (count,), generator=generator)


def prepared_cifar(count: int, seed: int) -> Prepared:
    """Random images in the prepared format that the pipeline's train stages read."""
    images, labels = random_cifar(count, seed)
    mean, std = channel_stats(images)
    meta = {"task": "image", "name": "random", "classes": [str(c) for c in range(CLASSES)],
            "mean": mean, "std": std, "shape": [3, SIDE, SIDE]}
    return Prepared(meta, {"train_x": images, "train_y": labels, "test_x": images[:1], "test_y": labels[:1]})


def build(domain: Domain, model: str, seed: int) -> nn.Module:
    """A network of the registry, on the domain's device and memory format, as the train stage builds it."""
    arch, options = MODELS[model]
    torch.manual_seed(seed)
    return domain.prepare_model(build_model(arch, options, **domain.data_arguments()))


def measure_ours(run: Run, device: torch.device) -> dict[str, Any]:
    """Images/s of one epoch of ``run.steps`` steps of ``Trainer.train_epoch`` after a warm-up epoch."""
    precision = resolve_precision(run.precision, device)
    train = TrainConfig(epochs=1, batch_size=run.batch_size, precision=precision, compile=run.compile,
                        augment=AugmentConfig(crop_padding=PADDING, hflip=True))
    warm = make_domain(prepared_cifar(run.warmup * run.batch_size, seed=1), train, device, precision)
    timed = make_domain(prepared_cifar(run.steps * run.batch_size, seed=2), train, device, precision)
    model = build(timed, run.model, seed=0)
    teacher = build(timed, run.model, seed=1) if run.distill else None
    trainable = model
    if run.compile:  # both networks, as the train stage compiles them
        trainable = torch.compile(model)
        teacher = torch.compile(teacher) if teacher is not None else None
    trainer = Trainer(trainable, warm, train, KDConfig(mode="ban" if run.distill else "none"), seed=0,
                      device=device, precision=precision, generation="bench", teacher=teacher)
    trainer.train_epoch()
    trainer.domain = timed
    report = trainer.train_epoch()
    return {"img_per_s": report.examples_per_s, "precision": precision, "params": count_parameters(model)}


class PilImages(Dataset):
    """What torchvision's CIFAR datasets do per item: a PIL image from an HWC array, then the transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Any) -> None:
        self.images = np.ascontiguousarray(images.permute(0, 2, 3, 1).numpy())
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), self.labels[index]


def ordinary_loader(run: Run, device: torch.device) -> DataLoader:
    from torchvision import transforms

    images, labels = random_cifar((run.warmup + run.steps) * run.batch_size, seed=2)
    mean, std = channel_stats(images)
    transform = transforms.Compose([transforms.RandomCrop(SIDE, padding=PADDING),
                                    transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                                    transforms.Normalize(mean, std)])
    return DataLoader(PilImages(images, labels, transform), batch_size=run.batch_size, shuffle=True,
                      num_workers=run.workers, pin_memory=device.type == "cuda", drop_last=True)


def measure_ordinary(run: Run, device: torch.device) -> dict[str, Any]:
    """The loop of a typical KD repository: fp32, KLDivLoss(batchmean), a host read per step."""
    loader = ordinary_loader(run, device)
    arch, options = MODELS[run.model]
    torch.manual_seed(0)
    model = build_model(arch, options, in_channels=3, num_classes=CLASSES).to(device).train()
    teacher = build_model(arch, options, in_channels=3, num_classes=CLASSES).to(device).eval() \
        if run.distill else None
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    kl_divergence = nn.KLDivLoss(reduction="batchmean")
    running_loss, correct, started = 0.0, 0, time.perf_counter()
    for step, (inputs, targets) in enumerate(loader):
        if step == run.warmup:
            started = time.perf_counter()  # the .item() below has already waited for the device
        inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        outputs = model(inputs)
        if teacher is None:
            loss = F.cross_entropy(outputs, targets)
        else:
            with torch.no_grad():
                teacher_outputs = teacher(inputs)
            loss = kl_divergence(F.log_softmax(outputs, dim=1), F.softmax(teacher_outputs, dim=1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
        correct += (outputs.argmax(1) == targets).sum().item()
    seconds = time.perf_counter() - started
    return {"img_per_s": run.steps * run.batch_size / seconds, "precision": "fp32",
            "params": count_parameters(model)}


def memory_mb(device: torch.device) -> float:
    """Peak memory so far: CUDA max allocated, or the CPU process's peak RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(run: Run) -> dict[str, Any]:
    """Run one measurement in this process (a fresh one: see ``run_isolated``)."""
    device = resolve_device(run.device)
    start_mb = memory_mb(device)
    figures = (measure_ours if run.kind == "ours" else measure_ordinary)(run, device)
    return {**asdict(run), **figures, "threads": torch.get_num_threads(), "start_mb": start_mb,
            "peak_mb": memory_mb(device)}


def run_isolated(run: Run) -> dict[str, Any]:
    """``measure`` in a child process, so that its peak memory and warm caches are its own."""
    command = [sys.executable, "-m", "bench.train_speed", "--one", json.dumps(asdict(run))]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).parents[1])
    if result.returncode != 0:
        raise SystemExit(f"{run.model} {run.way} failed:\n{result.stdout}\n{result.stderr}")
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "process_s": time.perf_counter() - started}


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model and precision of ours: median images/s of each way, peak memory and the ratios.

    The ordinary loop trains in fp32 only; its figures stand beside every precision of ours, so a
    row says whether the two ran at the same precision or each at its own default.
    """
    rows = []
    for model in dict.fromkeys(r["model"] for r in records):
        ordinary = [r for r in records if r["model"] == model and r["way"].startswith("ordinary/")]
        ours = [r for r in records if r["model"] == model and r["way"].startswith("ours/")]
        for precision in dict.fromkeys(r["precision"] for r in ours) or [None]:
            mine = [r for r in ours if r["precision"] == precision] + ordinary
            row: dict[str, Any] = {"model": model, "ours precision": precision,
                                   "compared at": comparison(precision, records[0]["default_precision"])}
            for way in WAYS:
                runs = [r for r in mine if r["way"] == way]
                if runs:
                    row["params"] = runs[0]["params"]
                    row[f"{way} img/s"] = statistics.median(r["img_per_s"] for r in runs)
                    row[f"{way} MB"] = max(r["peak_mb"] for r in runs)
                    row[f"{way.split('/')[0]} threads"] = threads(runs[0])
            row["ban/ce time"] = ratio(row, "ours/ce img/s", "ours/ban img/s")
            row["ours/ordinary ce"] = ratio(row, "ours/ce img/s", "ordinary/ce img/s")
            row["ours/ordinary ban"] = ratio(row, "ours/ban img/s", "ordinary/ban img/s")
            rows.append(row)
    return rows


def comparison(precision: str | None, default: str) -> str:
    """What a row compares: ours at ``precision`` against the ordinary loop's fp32."""
    if precision is None:
        return "ordinary only"
    same = precision == "fp32"
    if precision == default:
        return "same precision, both defaults" if same else "each one's default"
    return "same precision" if same else f"ours at {precision}"


def threads(record: dict[str, Any]) -> str:
    """Intra-op threads of the training process, and the ordinary loop's loader processes."""
    workers = f" + {record['workers']} loader workers" if record["way"].startswith("ordinary/") else ""
    return f"{record['threads']}{workers}"


def ratio(row: dict[str, Any], numerator: str, denominator: str) -> float | None:
    if numerator in row and denominator in row:
        return row[numerator] / row[denominator]
    return None


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A markdown table of the summary: ``columns`` (default: this benchmark's) that have a value."""
    columns = columns or ["model", "params", "ours precision", "compared at", *(f"{w} img/s" for w in WAYS),
                          "ban/ce time", "ours/ordinary ce", "ours/ordinary ban", "ours threads",
                          "ordinary threads", *(f"{w} MB" for w in WAYS)]
    columns = [c for c in columns if any(row.get(c) is not None for row in rows)]

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.2f}" if value < 10 else f"{value:,.0f}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.startswith("model name")] if Path("/proc/cpuinfo").exists() else ["cpu"]
    return f"{names[0]}, {len(os.sched_getaffinity(0))} cores"


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.train_speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), help="default: four for the device")
    parser.add_argument("--ways", nargs="+", choices=WAYS, default=list(WAYS))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, help="timed steps per run (default: 5 on CPU, 50 on CUDA)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default: 1 on CPU, 10 on CUDA)")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved repetitions; medians are shown")
    parser.add_argument("--workers", type=int, default=min(8, len(os.sched_getaffinity(0))),
                        help="DataLoader workers of the ordinary loop (default: cores, at most 8)")
    parser.add_argument("--precisions", nargs="+", default=["auto", "fp32"],
                        help="ours: each of auto | fp32 | bf16 (default: auto fp32; the ordinary loop: fp32)")
    parser.add_argument("--compile", action="store_true", help="ours: torch.compile the student")
    parser.add_argument("--out", type=Path, default=Path("bench/results/train_speed.json"))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one measurement, JSON in and out
    return parser.parse_args(argv)


def plan(args: argparse.Namespace, device: torch.device) -> list[Run]:
    """Every run, interleaved: each repeat goes through every model and way before the next."""
    kind = "cuda" if device.type == "cuda" else "cpu"
    steps, warmup = DEFAULT_STEPS[kind]
    models = args.models or DEFAULT_MODELS[kind]
    precisions = list(dict.fromkeys(resolve_precision(p, device) for p in args.precisions))
    return [Run(model, way, device.type, args.batch_size, args.steps or steps,
                warmup if args.warmup is None else args.warmup, args.workers, precision, args.compile)
            for _ in range(args.repeats) for model in models for way in args.ways
            for precision in (precisions if way.startswith("ours") else ["fp32"])]


def main(argv: list[str]) -> None:
    args = parse_arguments(argv)
    if args.one:
        print(json.dumps(measure(Run(**json.loads(args.one)))))
        return
    device = resolve_device(args.device)
    records = []
    default = resolve_precision("auto", device)
    for run in plan(args, device):
        records.append({**run_isolated(run), "default_precision": default})
        print(f"{run.model:>15} {run.way:<13} {records[-1]['img_per_s']:8,.0f} img/s "
              f"({records[-1]['precision']}, peak {records[-1]['peak_mb']:,.0f} MB)", flush=True)
    rows = summarise(records)
    first = records[0]
    header = (f"{machine(device)}; torch {torch.__version__}, {first['threads']} threads per training "
              f"process; batch {args.batch_size}, {first['steps']} timed steps after {first['warmup']}; "
              f"ordinary loader {args.workers} workers; auto is {default} here; compile {args.compile}")
    print(f"\n{header}\n\n{table(rows)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(device), "torch": torch.__version__,
                                    "settings": {k: str(v) for k, v in vars(args).items() if k != "one"},
                                    "summary": rows, "runs": records}, indent=1) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Training throughput with ``data.storage: stream`` against ``memory``, in one process, interleaved.

    python -m bench.stream_speed                          # ResNet-20, batch 128, 32x32 RGB
    python -m bench.stream_speed --rounds 6 --steps 30 --json bench/results/stream_speed.json
    python -m bench.stream_speed --arch imagenet_resnet --options '{"depth": 18}' --size 160 --batch-size 32

CIFAR-shaped random images are prepared into a temporary directory (the array files a stream
run maps; just written, so they sit in the page cache: this measures the gathering, not a disk).
Each round trains ``--steps`` batches from memory, then the same from the stream (the order
alternates between rounds), with the engine's own ``Trainer`` and the default augmentation
(crops of padding 4, flips); the first round is a warm-up and is not counted. It prints img/s
per round and storage, the medians, and the median of the rounds' ratios (stream / memory): on a
shared machine the load changes from round to round, and a round's two runs share its load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch

from ban.core.config import AugmentConfig, KDConfig, TrainConfig
from ban.data.images import channel_stats, image_meta
from ban.data.prepared import Prepared, load_prepared, save_prepared
from ban.nets import build_model
from ban.training.device import describe_device, resolve_device, resolve_precision
from ban.training.domains.image import ImageDomain
from ban.training.engine import Trainer

STORAGES = ("memory", "stream")


def random_prepared(images: int, size: int, seed: int = 0) -> Prepared:
    generator = torch.Generator().manual_seed(seed)
    train_x = torch.randint(0, 256, (images, 3, size, size), dtype=torch.uint8, generator=generator)
    train_y = torch.randperm(images, generator=generator) % 10  # every class, for 10 images or more
    mean, std = channel_stats(train_x)
    meta = image_meta("random", [str(c) for c in range(10)], mean, std, [3, size, size])
    return Prepared(meta, {"train_x": train_x, "train_y": train_y, "test_x": train_x[:10],
                           "test_y": train_y[:10]})


def measure(args: argparse.Namespace) -> dict[str, Any]:
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    train = TrainConfig(epochs=10**6, batch_size=args.batch_size, precision=precision,
                        augment=AugmentConfig(crop_padding=4, hflip=True))
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / "prepared"
        save_prepared(directory, random_prepared(args.steps * args.batch_size, args.size))
        prepared = load_prepared(directory)
        trainers = {}
        for storage in STORAGES:
            domain = ImageDomain(prepared, train, device, precision, storage=storage)
            torch.manual_seed(0)
            model = domain.prepare_model(build_model(args.arch, args.options, **domain.data_arguments()))
            trainers[storage] = Trainer(model, domain, train, KDConfig(mode="none"), seed=0, device=device,
                                        precision=precision, generation="bench")
        rounds: list[dict[str, float]] = []
        for round_index in range(args.rounds + 1):
            order = STORAGES if round_index % 2 == 0 else STORAGES[::-1]
            speeds = {storage: trainers[storage].train_epoch().examples_per_s for storage in order}
            if round_index:  # round 0 warms up both
                rounds.append(speeds)
                print(f"round {round_index}: " + "  ".join(f"{s} {speeds[s]:,.0f} img/s" for s in STORAGES)
                      + f"  ratio {speeds['stream'] / speeds['memory']:.3f}", flush=True)
    medians = {storage: statistics.median(r[storage] for r in rounds) for storage in STORAGES}
    return {"device": describe_device(device), "precision": precision, "threads": torch.get_num_threads(),
            "model": f"{args.arch} {json.dumps(args.options)}", "batch_size": args.batch_size,
            "size": args.size, "steps_per_round": args.steps, "rounds": rounds, "median_img_per_s": medians,
            "ratio": statistics.median(r["stream"] / r["memory"] for r in rounds)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet")
    parser.add_argument("--options", type=json.loads, default={"depth": 20, "width": 16},
                        help="the network's options, as JSON (default: ResNet-20)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--steps", type=int, default=20, help="batches per storage per round")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (after one warm-up round)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("BAN_PROGRESS_SECONDS", "3600")  # no progress lines inside the short epochs
    result = measure(args)
    medians = result["median_img_per_s"]
    print(f"{result['model']}, batch {result['batch_size']}, {result['size']}x{result['size']}, "
          f"{result['precision']} on {result['device']} ({result['threads']} threads): memory "
          f"{medians['memory']:,.0f} img/s, stream {medians['stream']:,.0f} img/s, "
          f"median ratio of the rounds {result['ratio']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

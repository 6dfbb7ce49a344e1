"""Host memory of a training process with ``data.storage: stream``, at two dataset sizes.

    python -m bench.stream_memory                        # 4,000 and 40,000 images of 3x64x64, batch 256
    python -m bench.stream_memory --images 2000 8000 --size 96 --json bench/results/stream_memory.json

Random images are prepared into a temporary directory; a fresh process per size trains one
epoch (every image read once) of a small ResNet from the stream and samples its memory from
``/proc/self/status`` every 20 ms: the peak of ``RssAnon`` (memory the process owns: the
network, the gathered batches, the labels) and the last ``RssFile`` (pages of the mapped files
it has touched: page cache, which the kernel reclaims when memory is short). The process's own
memory should not grow with the dataset; only the reclaimable mapped pages do.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

from ban.core.config import KDConfig, TrainConfig
from ban.data.prepared import load_prepared, save_prepared
from bench.stream_speed import random_prepared

ROOT = Path(__file__).resolve().parents[1]


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def train_one_epoch(directory: Path, batch_size: int, storage: str) -> dict[str, Any]:
    """The child: one epoch, with the memory sampled while it runs."""
    from ban.nets import build_model
    from ban.training.domains.image import ImageDomain
    from ban.training.engine import Trainer

    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    train = TrainConfig(epochs=1, batch_size=batch_size, precision="fp32")
    domain = ImageDomain(load_prepared(directory), train, cpu, "fp32", storage=storage)
    model = domain.prepare_model(build_model("resnet", {"depth": 8, "width": 4}, **domain.data_arguments()))
    trainer = Trainer(model, domain, train, KDConfig(mode="none"), seed=0, device=cpu, precision="fp32",
                      generation="bench")
    peak, done = [status_kib("RssAnon")], threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak.append(status_kib("RssAnon"))

    sampler = threading.Thread(target=sample, daemon=True)
    before = status_kib("RssAnon")
    sampler.start()
    report = trainer.train_epoch()
    done.set()
    sampler.join()
    return {"rss_anon_before_mib": before / 1024, "rss_anon_peak_mib": max(peak) / 1024,
            "rss_file_mib": status_kib("RssFile") / 1024, "images_per_s": report.examples_per_s}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, nargs=2, default=[4000, 40000], help="two dataset sizes")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--storage", default="stream", choices=["stream", "memory"],
                        help="memory: the same measurement with batches indexed in memory, for comparison")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # the measured process
    args = parser.parse_args()
    if args.child:
        print(json.dumps(train_one_epoch(args.child, args.batch_size, args.storage)))
        return
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for images in args.images:
            directory = Path(scratch) / f"prepared{images}"
            save_prepared(directory, random_prepared(images, args.size))
            started = time.perf_counter()
            environment = dict(os.environ, BAN_PROGRESS_SECONDS="3600", OMP_NUM_THREADS="1")
            child = subprocess.run([sys.executable, "-m", "bench.stream_memory", "--child", str(directory),
                                    "--batch-size", str(args.batch_size), "--storage", args.storage],
                                   cwd=ROOT, capture_output=True, text=True, check=True, env=environment)
            run = {"images": images, "image_bytes": 3 * args.size**2,
                   **json.loads(child.stdout.splitlines()[-1]), "seconds": time.perf_counter() - started}
            print(f"{images:>6} images ({images * run['image_bytes'] / 2**20:,.0f} MiB): RssAnon "
                  f"{run['rss_anon_before_mib']:,.0f} MiB before the epoch, peak "
                  f"{run['rss_anon_peak_mib']:,.0f} MiB; RssFile {run['rss_file_mib']:,.0f} MiB after it "
                  "(mapped pages, reclaimable)", flush=True)
            runs.append(run)
    growth = runs[1]["rss_anon_peak_mib"] - runs[0]["rss_anon_peak_mib"]
    more = runs[1]["images"] - runs[0]["images"]
    print(f"peak RssAnon grows by {growth:+.0f} MiB for {more:,} more images "
          f"({more * runs[0]['image_bytes'] / 2**20:,.0f} MiB of them)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"size": args.size, "batch_size": args.batch_size,
                                         "storage": args.storage, "runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()

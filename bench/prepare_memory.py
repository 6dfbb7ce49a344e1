"""Peak memory and time of the prepare stage on ImageFolders of two sizes, generated here.

    python -m bench.prepare_memory                                   # 800 and 3,200 images, 160 px
    python -m bench.prepare_memory --images 500 2000 --image-size 128 --json bench/results/prepare_memory.json

Writes JPEG files in ImageNet's layout (``train/<class>/*.JPEG``, ``val/<class>/*.JPEG``) of
ImageNet-like sizes (sides of 300-500 pixels, smooth colour fields with noise, quality 90), then
runs the real stage, ``python -m stages.prepare``, in a fresh process for each size and reads
that process's peak resident memory (``ru_maxrss`` from ``wait4``). Prints, per size: the peak
RSS, the seconds and seconds per image, the prepared bytes per image on disk, and the ratio of
the peak RSS of the larger size to the smaller: near 1 when memory does not grow with the images.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CLASSES = 10
VAL_SHARE = 0.1  # the val/ split's images, as a share of the train/ split's


def write_folder(root: Path, images: int, seed: int) -> None:
    """``images`` training JPEGs and ``VAL_SHARE`` as many validation ones, spread over ``CLASSES``."""
    rng = np.random.default_rng(seed)
    counts = {"train": images, "val": max(CLASSES, round(images * VAL_SHARE))}
    for split, count in counts.items():
        for index in range(count):
            label = index % CLASSES
            height, width = rng.integers(300, 501, size=2)
            path = root / split / f"n{label:08d}" / f"{split}_{index:07d}.JPEG"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(natural_looking(rng, height, width)).save(path, quality=90)


def natural_looking(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth colour field plus mild noise: compresses like a photograph, unlike pure noise."""
    corners = rng.integers(0, 256, (2, 2, 3)).astype(np.float32)
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    cols = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    field = (corners[0, 0] * (1 - rows) * (1 - cols) + corners[0, 1] * (1 - rows) * cols
             + corners[1, 0] * rows * (1 - cols) + corners[1, 1] * rows * cols)
    return np.clip(field + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)


def prepare_in_process(project: Path, raw: Path, image_size: int) -> dict[str, Any]:
    """Run the prepare stage as its own process; its wall time and peak RSS."""
    params = {"data": {"name": "imagefolder", "root": str(raw), "image_size": image_size}}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    environment = dict(os.environ, PYTHONPATH=str(ROOT), BAN_PROGRESS_SECONDS="60")
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "stages.prepare"], cwd=project, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    output = process.stdout.read()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"prepare failed:\n{output}")
    prepared = project / "data" / "prepared"
    disk = sum(path.stat().st_size for path in prepared.iterdir())
    return {"seconds": seconds, "peak_rss_mib": usage.ru_maxrss / 1024, "prepared_bytes": disk}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.prepare_memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, nargs=2, default=[800, 3200], help="training images, two sizes")
    parser.add_argument("--image-size", type=int, default=160, help="data.image_size")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for images in args.images:
            raw, project = Path(scratch) / f"raw{images}", Path(scratch) / f"project{images}"
            project.mkdir()
            started = time.perf_counter()
            write_folder(raw, images, seed=images)
            total = sum(1 for _ in raw.rglob("*.JPEG"))
            jpeg_bytes = sum(path.stat().st_size for path in raw.rglob("*.JPEG"))
            print(f"{total} JPEG files ({jpeg_bytes / total / 1024:.0f} KiB each) written in "
                  f"{time.perf_counter() - started:.0f}s", flush=True)
            run = {"images": total, "jpeg_bytes_per_image": jpeg_bytes / total,
                   **prepare_in_process(project, raw, args.image_size)}
            run["seconds_per_image"] = run["seconds"] / total
            run["prepared_bytes_per_image"] = run["prepared_bytes"] / total
            print(f"{total:>6} images: peak RSS {run['peak_rss_mib']:,.0f} MiB, {run['seconds']:.1f}s "
                  f"({1000 * run['seconds_per_image']:.2f} ms an image, process start included), "
                  f"{run['prepared_bytes_per_image']:,.0f} prepared bytes an image", flush=True)
            runs.append(run)
            for path in sorted(raw.rglob("*"), reverse=True):  # free the disk before the next size
                path.unlink() if path.is_file() else path.rmdir()
    ratio = runs[1]["peak_rss_mib"] / runs[0]["peak_rss_mib"]
    print(f"peak RSS ratio ({runs[1]['images']} / {runs[0]['images']} images): {ratio:.3f} "
          f"for {runs[1]['images'] / runs[0]['images']:.1f}x the images; cpus {len(os.sched_getaffinity(0))}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        result = {"image_size": args.image_size, "cpus": len(os.sched_getaffinity(0)), "runs": runs,
                  "peak_rss_ratio": ratio}
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

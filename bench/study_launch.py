"""A study three ways in one run: the Ray launcher, ``dvc queue``, and sequential ``dvc exp run``.

    python -m bench.study_launch                         # 2 seeds x 3 kd modes of the committed params
    python -m bench.study_launch --seeds 2 --modes ban cwtm dkpp --jobs 2

Each way starts from its own clone of this repository's HEAD with an empty DVC cache, so none
reuses another's work, and runs every combination of ``seed`` and ``kd.mode``:

* ``launcher``: ``python -m stages.launch`` on a local Ray instance, ``--jobs`` experiments at a
  time with one CPU each; stages that several experiments share run once;
* ``queue``: ``dvc exp run --queue`` then ``dvc queue start -j <jobs>``, one thread per worker;
* ``sequential``: one ``dvc exp run`` after the other in the workspace, all cores to each.

It prints wall time and how many times the teacher was trained (``Running stage 'teacher'`` in the
outputs and logs), and writes them to ``bench/results/study_launch.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.train_speed import machine, table

ROOT = Path(__file__).resolve().parents[1]
TEACHER_RUN = re.compile(r"^Running stage 'teacher'", re.MULTILINE)


def clone(directory: Path) -> Path:
    """This repository's HEAD with an empty cache: what a newcomer's ``git clone`` gives. Its experiments
    stay in the clone (no ``origin`` to push them to)."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(directory)], check=True)
    subprocess.run(["git", "remote", "remove", "origin"], cwd=directory, check=True)
    return directory


def command(project: Path, *arguments: str, threads: int) -> str:
    env = dict(os.environ, DVC_NO_ANALYTICS="1", OMP_NUM_THREADS=str(threads))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(arguments, cwd=project, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout + result.stderr


def grid(seeds: int, modes: list[str]) -> list[str]:
    return ["-S", f"seed=range(0,{seeds})", "-S", f"kd.mode={','.join(modes)}"]


def launcher(project: Path, seeds: int, modes: list[str], jobs: int) -> str:
    work = project.parent / f"{project.name}-work"  # outside the clone, which stays clean
    out = command(project, sys.executable, "-m", "stages.launch", *grid(seeds, modes), "--name", "bench",
                  "--work-dir", str(work), threads=1)
    return out + "".join(path.read_text() for path in work.glob("*/logs/*.log"))


def queue(project: Path, seeds: int, modes: list[str], jobs: int) -> str:
    command(project, "dvc", "exp", "run", "--queue", *grid(seeds, modes), threads=1)
    out = command(project, "dvc", "queue", "start", "-j", str(jobs), threads=1)
    while re.search(r"\b(Queued|Running)\b", status := command(project, "dvc", "queue", "status", threads=1)):
        time.sleep(5)
    names = [line.split()[1] for line in status.splitlines()[1:] if "Success" in line or "Failed" in line]
    return out + "".join(command(project, "dvc", "queue", "logs", name, threads=1) for name in names)


def sequential(project: Path, seeds: int, modes: list[str], jobs: int) -> str:
    threads = len(os.sched_getaffinity(0))
    return "".join(command(project, "dvc", "exp", "run", "-S", f"seed={seed}", "-S", f"kd.mode={mode}",
                           threads=threads) for seed in range(seeds) for mode in modes)


WAYS: dict[str, Callable[[Path, int, list[str], int], str]] = {
    "launcher": launcher, "queue": queue, "sequential": sequential}


def experiments(project: Path) -> int:
    """Experiments that finished, as ``dvc exp show`` lists them."""
    shown = json.loads(command(project, "dvc", "exp", "show", "--json", threads=1))
    return sum(1 for baseline in shown for experiment in baseline.get("experiments") or []
               if (experiment.get("executor") or {}).get("state", "success") == "success")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.study_launch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=["ban", "cwtm", "dkpp"])
    parser.add_argument("--jobs", type=int, default=2, help="experiments at a time (launcher and queue)")
    parser.add_argument("--ways", nargs="+", choices=list(WAYS), default=list(WAYS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/study_launch.json")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ban-bench-") as directory:
        for way in args.ways:
            project = clone(Path(directory) / way)
            started = time.perf_counter()
            output = WAYS[way](project, args.seeds, args.modes, args.jobs)
            seconds = time.perf_counter() - started
            rows.append({"way": way, "experiments": experiments(project), "wall min": seconds / 60,
                         "teacher trainings": len(TEACHER_RUN.findall(output))})
            print(f"{way}: {rows[-1]}", flush=True)
    fastest = min(row["wall min"] for row in rows)
    for row in rows:
        row["wall / fastest"] = row["wall min"] / fastest
    print(f"\n{args.seeds} seeds x {len(args.modes)} kd modes ({', '.join(args.modes)}), {args.jobs} at a "
          f"time, on {machine_name()}:\n")
    print(table(rows, ["way", "experiments", "wall min", "wall / fastest", "teacher trainings"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"seeds": args.seeds, "modes": args.modes, "jobs": args.jobs,
                                    "machine": machine_name(), "rows": rows}, indent=2) + "\n")


def machine_name() -> str:
    import torch

    return machine(torch.device("cpu"))


if __name__ == "__main__":
    main(sys.argv[1:])

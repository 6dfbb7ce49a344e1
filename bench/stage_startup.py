"""What holding the garbage collector off while a stage imports saves: the CPU time of each stage's
start-up, as shipped and with the collector on while it imports.

    python -m bench.stage_startup                 # every pipeline stage, 5 runs of each way
    python -m bench.stage_startup --runs 9 --stages train validate

A start-up is ``python -m stages.X --help``: every import of the stage, then its argument parser, which
exits. "as shipped" runs exactly that (``stages/__init__.py`` turns the collector off while ``-m``
locates the module); "collector on" runs the same module through ``runpy`` from ``python -c``, so the
package is imported by a program and leaves the collector on. The two ways alternate, and the table shows
the median CPU seconds (user + system, of the child) of each and their ratio.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import subprocess
import sys
from pathlib import Path

import torch

from ban.training.device import device_label

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("validate", "prepare", "train", "ensemble", "evaluate")
COLLECTING = ("import runpy, sys; sys.argv = [sys.argv[0], '--help']; "
              "runpy.run_module({!r}, run_name='__main__')")


def cpu_seconds(command: list[str]) -> float:
    """The CPU time (user + system) a child spent running ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(stage: str, runs: int) -> tuple[float, float]:
    """Median CPU seconds of the stage's start-up as shipped and with the collector on."""
    module = f"stages.{stage}"
    shipped, collecting = [], []
    for _ in range(runs):
        shipped.append(cpu_seconds([sys.executable, "-m", module, "--help"]))
        collecting.append(cpu_seconds([sys.executable, "-c", COLLECTING.format(module)]))
    return statistics.median(shipped), statistics.median(collecting)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stage_startup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs of each way per stage (default 5)")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    args = parser.parse_args()
    cpu = device_label(torch.device("cpu"))
    print(f"{cpu}; Python {platform.python_version()}; {args.runs} runs of each way")
    print("| stage | as shipped (CPU s) | collector on (CPU s) | ratio |")
    print("|---|---|---|---|")
    totals = [0.0, 0.0]
    for stage in args.stages:
        shipped, collecting = measure(stage, args.runs)
        totals = [totals[0] + shipped, totals[1] + collecting]
        print(f"| {stage} | {shipped:.2f} | {collecting:.2f} | {shipped / collecting:.2f} |")
    print(f"| all | {totals[0]:.2f} | {totals[1]:.2f} | {totals[0] / totals[1]:.2f} |")


if __name__ == "__main__":
    main()

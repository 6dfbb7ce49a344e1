"""``python -m stages.preset NAME`` makes ``presets/NAME.yaml`` the params; ``--list`` shows them all.

Not a pipeline stage: it only rewrites ``params.yaml`` (after validating the preset), so that
``dvc repro`` or ``dvc exp run`` then runs that experiment; ``git checkout params.yaml`` goes back.
"""

from __future__ import annotations

import argparse
import math

from ban.core.config import Params
from ban.core.paths import PARAMS
from ban_pipeline.presets import (
    NetworkCost,
    apply_preset,
    gpu_hours,
    load_preset,
    network_costs,
    preset_names,
    preset_path,
    task_of,
    title,
    training_flops,
)
from stages.cli import run


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.preset", description=__doc__)
    parser.add_argument("name", nargs="?", help="a file name in presets/ without .yaml")
    parser.add_argument("--list", action="store_true", help="every preset with its networks and cost")
    args = parser.parse_args(argv)
    if args.list or not args.name:
        print(listing())
        return
    params = apply_preset(args.name, PARAMS)
    print(f"{PARAMS} is now presets/{args.name}.yaml ({summary(params)}); "
          "run it with `dvc exp run` (or `dvc exp run --queue -S 'seed=range(0,5)'`)")


def summary(params: Params) -> str:
    """How many networks, and the distinct architectures among them with their sizes."""
    return f"{len(params.generations())} networks: {sizes(network_costs(params, count_flops=False)) or '-'}"


def sizes(costs: list[NetworkCost]) -> str:
    return " / ".join(dict.fromkeys(f"{cost.arch} {cost.parameters / 1e6:.2f}M" for cost in costs))


def listing() -> str:
    """A markdown table: networks, parameters, training compute and its GPU-hour estimate per preset."""
    lines = ["| preset | networks | parameters | training PFLOP | H100-hours (estimate) | what |",
             "|---|---|---|---|---|---|"]
    for name in preset_names():
        path = preset_path(name)
        params = load_preset(path)
        costs = network_costs(params)
        flops = training_flops(params, costs)
        compute = "-" if math.isnan(flops) else readable(flops / 1e15)
        hours = "-" if math.isnan(flops) else readable(gpu_hours(flops, task_of(params)))
        lines.append(f"| {name} | {len(params.generations())} | {sizes(costs) or '-'} | {compute} | {hours} "
                     f"| {title(path)} |")
    return "\n".join(lines)


def readable(value: float) -> str:
    """Three significant digits, without exponents; tiny values as "<0.01"."""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value >= 0.01 else "<0.01"


if __name__ == "__main__":
    run(main)

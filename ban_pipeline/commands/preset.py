"""``python -m stages.preset NAME`` (``ban preset NAME``) makes ``presets/NAME.yaml`` the params;
``--list`` shows them all.

Not a pipeline stage: it only rewrites ``params.yaml`` (after validating the preset), so that
``dvc repro`` or ``dvc exp run`` then runs that experiment; ``git checkout params.yaml`` goes back.
"""

from __future__ import annotations

import argparse
import math

from ban.core.config import Params
from ban.core.paths import PARAMS
from ban_pipeline.presets import (
    apply_preset,
    gpu_hours,
    load_preset,
    network_costs,
    network_sizes,
    preset_names,
    preset_path,
    short_number,
    task_of,
    title,
    training_flops,
)


def main(argv: list[str], prog: str = "python -m stages.preset") -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
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
    costs = network_costs(params, count_flops=False)
    return f"{len(params.generations())} networks: {network_sizes(costs) or '-'}"


def listing() -> str:
    """A markdown table: networks, parameters, training compute and its GPU-hour estimate per preset."""
    lines = ["| preset | networks | parameters | training PFLOP | H100-hours (estimate) | what |",
             "|---|---|---|---|---|---|"]
    for name in preset_names():
        path = preset_path(name)
        params = load_preset(path)
        costs = network_costs(params)
        flops = training_flops(params, costs)
        compute = "-" if math.isnan(flops) else short_number(flops / 1e15)
        hours = "-" if math.isnan(flops) else short_number(gpu_hours(flops, task_of(params)))
        lines.append(f"| {name} | {len(params.generations())} | {network_sizes(costs) or '-'} | {compute} "
                     f"| {hours} | {title(path)} |")
    return "\n".join(lines)

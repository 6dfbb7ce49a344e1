"""``python -m stages.tables`` (``ban tables``): the paper's tables this project reproduces, their rows and
their cost.

Not a pipeline stage. Without a name, one line per table; with one (``table2``), its rows (the paper's
parameter count beside ours) and its runs, each with its networks and the estimated H100-hours for
``--seeds`` seeds. Run a table with ``python -m stages.launch --table NAME``, read it back with
``python -m stages.aggregate --table NAME``.
"""

from __future__ import annotations

import argparse

from ban.core.errors import ConfigError
from ban_pipeline.paper_tables import Table, check_cells, load_tables, table_named
from ban_pipeline.presets import (
    NetworkCost,
    estimated_gpu_hours,
    network_costs,
    network_sizes,
    short_number,
)


def main(argv: list[str], prog: str = "python -m stages.tables") -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", nargs="?", help="a table of paper/tables.yaml (table1, table2, ...)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds to cost (default: 5)")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        raise ConfigError("--seeds must be >= 1")
    print(rows_and_runs(table_named(args.table), args.seeds) if args.table else overview(args.seeds))


def overview(seeds: int) -> str:
    """One line per table: rows, runs, networks and H100-hours per seed and for ``seeds`` seeds."""
    lines = ["| table | rows | runs | networks per seed | H100-hours per seed | "
             f"H100-hours, {seeds} seeds | what |", "|---|---|---|---|---|---|---|"]
    for name, table in load_tables().items():
        params = check_cells(table)
        networks = sum(len(chain.generations()) for chain in params.values())
        hours = sum(estimated_gpu_hours(chain) for chain in params.values())
        lines.append(f"| {name} | {len(table.rows)} | {len(table.runs)} | {networks} | "
                     f"{short_number(hours)} | {short_number(hours * seeds)} | {table.title} |")
    return "\n".join(lines)


def rows_and_runs(table: Table, seeds: int) -> str:
    """The table's rows (the paper's parameter count beside ours) and its runs with their cost."""
    params = check_cells(table)
    costs = {run_id: network_costs(chain, count_flops=False) for run_id, chain in params.items()}
    lines = [f"# {table.title} (`{table.name}`)", "",
             "| row | columns | runs | parameters (paper) | parameters (ours) |", "|---|---|---|---|---|"]
    for row in table.rows:
        first = row.cells[0]
        ours = _parameters(costs[first.run], first.network)
        paper = "-" if row.parameters is None else f"{row.parameters:g}M"
        runs = ", ".join(dict.fromkeys(cell.run for cell in row.cells))
        lines.append(f"| {row.name} | {len(row.cells)} | {runs} | {paper} | {ours} |")
    lines += ["", "| run | preset | overrides | networks | H100-hours per seed | "
              f"H100-hours, {seeds} seeds |", "|---|---|---|---|---|---|"]
    total = 0.0
    for run_id, spec in table.runs.items():
        hours = estimated_gpu_hours(params[run_id])
        total += hours * seeds
        lines.append(f"| {run_id} | {spec.preset} | {' '.join(spec.overrides) or '-'} | "
                     f"{len(costs[run_id])}: {network_sizes(costs[run_id])} | {short_number(hours)} | "
                     f"{short_number(hours * seeds)} |")
    lines += ["", f"{len(table.runs) * seeds} experiments, about {short_number(total)} H100-hours for "
              f"{seeds} seeds (estimated from FLOPs, as `python -m stages.preset --list`): "
              f"`python -m stages.launch --table {table.name} -S 'seed=range(0,{seeds})'`"]
    return "\n".join(lines)


def _parameters(costs: list[NetworkCost], network: str) -> str:
    """The count of ``network``'s parameters in millions; "-" for an ensemble."""
    counts = {cost.generation: cost.parameters for cost in costs}
    return f"{counts[network] / 1e6:.2f}M" if network in counts else "-"

"""The paper's tables as data (``paper/tables.yaml``): the published numbers, and the presets whose
experiments reproduce each cell.

A table has *runs* (a preset with ``-S`` overrides: one experiment per seed), *columns* (the paper's)
and *rows*; each cell names a run, a network of its chain (a generation, or an ensemble ``ensK``), a
metric and the paper's number. The launcher runs a table's runs, the aggregate reads the finished
experiments back into the cells; both name a run's experiments ``<study>-<run>-<NN>...``.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ban.core.config import TEACHER, Params
from ban.core.errors import ConfigError
from ban.tasks import headline_metrics, metric_name
from ban_pipeline.engines import dvc_private
from ban_pipeline.presets import load_preset, preset_path

TABLES = Path("paper/tables.yaml")
RUN_ID = re.compile(r"^[a-z0-9_]+$")  # a part of experiment names, which git references must accept
METRICS = tuple(dict.fromkeys([*headline_metrics(), metric_name("valid", "perplexity")]))


@dataclass(frozen=True)
class Run:
    """The experiments of one seed each: ``presets/<preset>.yaml`` with ``overrides`` applied first."""

    id: str
    preset: str
    overrides: tuple[str, ...]

    @property
    def params_file(self) -> str:
        return str(preset_path(self.preset))


@dataclass(frozen=True)
class Cell:
    row: str
    column: str
    run: str  # a run id of the table
    network: str  # a generation or an ensemble (ens2, ens3...) of the run's chain
    metric: str
    paper: float | None  # None: the paper gives no number


@dataclass(frozen=True)
class Row:
    name: str
    parameters: float | None  # the paper's count, in millions
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    metric: str
    runs: dict[str, Run]
    columns: tuple[str, ...]
    rows: tuple[Row, ...]

    def selected(self, rows: list[str] | None) -> list[Run]:
        """The runs the ``rows`` named (all when None), in the table's order."""
        if rows is None:
            return list(self.runs.values())
        known = [row.name for row in self.rows]
        unknown = [name for name in rows if name not in known]
        if unknown:
            raise ConfigError(f"--rows: {', '.join(unknown)} not in {self.name}; "
                              f"its rows: {', '.join(known)}")
        used = {cell.run for row in self.rows if row.name in rows for cell in row.cells}
        return [run for run_id, run in self.runs.items() if run_id in used]


def load_tables(path: Path = TABLES) -> dict[str, Table]:
    """Every table of ``path``, its structure checked (each mistake one ConfigError naming where)."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: {str(error).splitlines()[0]}") from None
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: expected a mapping of table names to tables")
    return {name: _table(name, spec, f"{path}: {name}") for name, spec in raw.items()}


def table_named(name: str, path: Path = TABLES) -> Table:
    tables = load_tables(path)
    if name not in tables:
        raise ConfigError(f"unknown table {name!r}; known: {', '.join(tables)}")
    return tables[name]


def run_params(run: Run) -> Params:
    """A run's params as its experiments start from them (seed aside), checked as every stage would."""
    from dvc.exceptions import DvcException

    with tempfile.TemporaryDirectory(prefix="ban-table-") as directory:
        path = Path(directory) / "params.yaml"
        path.write_bytes(preset_path(run.preset).read_bytes())
        try:
            dvc_private.apply_overrides(path, list(run.overrides))
        except DvcException as error:
            line = str(error.__cause__ or error).splitlines()[0]
            raise ConfigError(f"run {run.id}: {' '.join(run.overrides)}: {line}") from None
        try:
            return load_preset(path)
        except ConfigError as error:
            raise ConfigError(f"run {run.id} (preset {run.preset}): {error}") from None


def networks(params: Params) -> list[str]:
    """What a chain reports: its generations, then its ensembles Ens*k (``ens2``...)."""
    return [TEACHER, *params.students] + [f"ens{k}" for k in range(2, len(params.ensemble_members()) + 1)]


def check_cells(table: Table) -> dict[str, Params]:
    """Every run's params, once each cell's network is known to be in its run's chain."""
    params = {run_id: run_params(run) for run_id, run in table.runs.items()}
    for row in table.rows:
        for cell in row.cells:
            chain = networks(params[cell.run])
            if cell.network not in chain:
                raise ConfigError(f"{table.name}, row {row.name}, column {cell.column}: run {cell.run} has "
                                  f"no network {cell.network!r}; it has {', '.join(chain)}")
    return params


def _table(name: str, spec: Any, where: str) -> Table:
    spec = _mapping(spec, where, required=("title", "metric", "runs", "columns", "rows"))
    metric = _metric(spec["metric"], f"{where}.metric")
    runs = {run_id: _run(run_id, value, f"{where}.runs.{run_id}")
            for run_id, value in _mapping(spec["runs"], f"{where}.runs").items()}
    columns = [_mapping(column, f"{where}.columns[{index}]", required=("name",))
               for index, column in enumerate(_list(spec["columns"], f"{where}.columns"))]
    rows = tuple(_row(row, columns, runs, metric, f"{where}.rows[{index}]")
                 for index, row in enumerate(_list(spec["rows"], f"{where}.rows")))
    unused = set(runs) - {cell.run for row in rows for cell in row.cells}
    if unused:
        raise ConfigError(f"{where}.runs: {', '.join(sorted(unused))} in no cell")
    names = tuple(str(column["name"]) for column in columns)
    return Table(name, str(spec["title"]), metric, runs, names, rows)


def _run(run_id: str, spec: Any, where: str) -> Run:
    if not RUN_ID.match(str(run_id)):
        raise ConfigError(f"{where}: a run id is lower-case letters, digits and _")
    spec = _mapping(spec, where, required=("preset",))
    overrides = _list(spec.get("set", []), f"{where}.set")
    return Run(str(run_id), str(spec["preset"]), tuple(str(override) for override in overrides))


def _row(spec: Any, columns: list[dict[str, Any]], runs: dict[str, Run], metric: str, where: str) -> Row:
    spec = _mapping(spec, where, required=("name", "paper"))
    paper = _list(spec["paper"], f"{where}.paper", length=len(columns))
    if any(value is not None and not isinstance(value, int | float) for value in paper):
        raise ConfigError(f"{where}.paper: numbers, or null where the paper gives none")
    by_role = spec["runs"] if "runs" in spec else {None: spec.get("run")}
    chosen = _list(spec.get("networks", [column.get("network") for column in columns]), f"{where}.networks",
                   length=len(columns))
    cells = []
    for column, network, value in zip(columns, chosen, paper, strict=True):
        role = column.get("run")
        run_id = by_role.get(role) if isinstance(by_role, dict) else None
        if run_id not in runs:
            which = f" for {role!r}" if role else ""
            raise ConfigError(f"{where}: column {column['name']!r} needs a run{which} among "
                              f"{', '.join(runs)}")
        if not network:
            raise ConfigError(f"{where}: column {column['name']!r} names no network")
        cells.append(Cell(str(spec["name"]), str(column["name"]), run_id, str(network),
                          _metric(column.get("metric", metric), f"{where}: column {column['name']!r}"),
                          None if value is None else float(value)))
    parameters = spec.get("parameters")
    return Row(str(spec["name"]), None if parameters is None else float(parameters), tuple(cells))


def _metric(name: Any, where: str) -> str:
    if name not in METRICS:
        raise ConfigError(f"{where}: unknown metric {name!r}; valid: {', '.join(METRICS)}")
    return str(name)


def _mapping(value: Any, where: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping")
    missing = [key for key in required if key not in value]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")
    return value


def _list(value: Any, where: str, length: int | None = None) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list")
    if length is not None and len(value) != length:
        raise ConfigError(f"{where}: {len(value)} entries for {length} columns")
    return value

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
from dataclasses import dataclass, field
from pathlib import Path

from ban.core.config import TEACHER, Params
from ban.core.errors import ConfigError
from ban.core.schema import load_yaml
from ban.tasks import headline_metrics, metric_name
from ban_pipeline.engines import dvc_private
from ban_pipeline.presets import load_preset, preset_path

TABLES = Path("paper/tables.yaml")
RUN_ID = re.compile(r"^[a-z0-9_]+$")  # a part of experiment names, which git references must accept
METRICS = tuple(dict.fromkeys([*headline_metrics(), metric_name("valid", "perplexity")]))


@dataclass(frozen=True)
class RunSpec:
    """A run as ``paper/tables.yaml`` writes it."""

    preset: str
    set: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    network: str | None = None
    metric: str | None = None
    run: str | None = None  # a key of each row's ``runs``


@dataclass(frozen=True)
class RowSpec:
    name: str
    paper: list[float | None]  # per column; None where the paper gives no number
    parameters: float | None = None  # the paper's count, in millions
    run: str | None = None  # the row's only run, or
    runs: dict[str, str] = field(default_factory=dict)  # its run for each column's ``run``
    networks: list[str | None] | None = None  # per column, where they differ from the columns'


@dataclass(frozen=True)
class TableSpec:
    """A table as ``paper/tables.yaml`` writes it, read by the typed parser of ``params.yaml``."""

    title: str
    metric: str
    runs: dict[str, RunSpec]
    columns: list[ColumnSpec]
    rows: list[RowSpec]


@dataclass(frozen=True)
class TableRun:
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
    runs: dict[str, TableRun]
    columns: tuple[str, ...]
    rows: tuple[Row, ...]

    def selected(self, rows: list[str] | None) -> list[TableRun]:
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
    """Every table of ``path``, its structure checked (each mistake one ConfigError naming where; an
    unknown key names the nearest known one)."""
    specs = load_yaml(dict[str, TableSpec], path)
    if not specs:
        raise ConfigError(f"{path}: expected a mapping of table names to tables")
    return {name: _table(name, spec, f"{path}: {name}") for name, spec in specs.items()}


def table_named(name: str, path: Path = TABLES) -> Table:
    return _pick(load_tables(path), name)


def tables_named(argument: str, path: Path = TABLES) -> list[Table]:
    """The tables a ``--table`` argument names: ``all``, or names separated by commas."""
    tables = load_tables(path)
    if argument == "all":
        return list(tables.values())
    return [_pick(tables, name.strip()) for name in argument.split(",")]


def _pick(tables: dict[str, Table], name: str) -> Table:
    if name not in tables:
        raise ConfigError(f"unknown table {name!r}; known: {', '.join(tables)}")
    return tables[name]


def run_params(run: TableRun) -> Params:
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


def _table(name: str, spec: TableSpec, where: str) -> Table:
    metric = _metric(spec.metric, f"{where}.metric")
    runs = {run_id: _run(run_id, value, f"{where}.runs.{run_id}") for run_id, value in spec.runs.items()}
    rows = tuple(_row(row, spec.columns, runs, metric, f"{where}.rows[{index}]")
                 for index, row in enumerate(spec.rows))
    unused = set(runs) - {cell.run for row in rows for cell in row.cells}
    if unused:
        raise ConfigError(f"{where}.runs: {', '.join(sorted(unused))} in no cell")
    return Table(name, spec.title, metric, runs, tuple(column.name for column in spec.columns), rows)


def _run(run_id: str, spec: RunSpec, where: str) -> TableRun:
    if not RUN_ID.match(run_id):
        raise ConfigError(f"{where}: a run id is lower-case letters, digits and _")
    return TableRun(run_id, spec.preset, tuple(spec.set))


def _row(spec: RowSpec, columns: list[ColumnSpec], runs: dict[str, TableRun], metric: str, where: str) -> Row:
    if len(spec.paper) != len(columns):
        raise ConfigError(f"{where}.paper: {len(spec.paper)} entries for {len(columns)} columns")
    chosen = spec.networks if spec.networks is not None else [column.network for column in columns]
    if len(chosen) != len(columns):
        raise ConfigError(f"{where}.networks: {len(chosen)} entries for {len(columns)} columns")
    cells = []
    for column, network, value in zip(columns, chosen, spec.paper, strict=True):
        run_id = spec.runs.get(column.run) if column.run else spec.run
        if run_id not in runs:
            which = f" for {column.run!r}" if column.run else ""
            raise ConfigError(f"{where}: column {column.name!r} needs a run{which} among {', '.join(runs)}")
        if not network:
            raise ConfigError(f"{where}: column {column.name!r} names no network")
        cells.append(Cell(spec.name, column.name, run_id, network,
                          _metric(column.metric or metric, f"{where}: column {column.name!r}"), value))
    return Row(spec.name, spec.parameters, tuple(cells))


def _metric(name: str, where: str) -> str:
    if name not in METRICS:
        raise ConfigError(f"{where}: unknown metric {name!r}; valid: {', '.join(METRICS)}")
    return name

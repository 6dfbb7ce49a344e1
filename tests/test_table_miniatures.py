"""Every one of the paper's tables in miniature, end to end: one ``stages.launch --table all`` runs them
on a local Ray instance, one ``stages.aggregate --table`` (by its ``main``, in this process) reads them all
back, and every cell is checked.

A miniature keeps what a table is made of: its runs (presets with their overrides), rows, columns and
objectives (each preset's students, ``kd`` and ensembles). It shrinks only what costs time: every network
becomes a tiny one of the same architecture, trained for one epoch, on synthetic CIFAR-10, CIFAR-100 and
Penn Treebank files written in their real on-disk formats into one folder, given with ``-S data.root``
as a user gives theirs (the synthetic files have no official checksums: the presets get
``data.verify: false``). Rows whose miniatures are the same networks again are left out with ``--rows``
(Table 1 keeps a DenseNet row, its Wide-ResNet rows differing only in width; Table 2 one DenseNet row;
Table 5 its Wide-ResNet row WRN-1-1, and its preset drops the students only the other rows show; Table 6
its LSTM row, the CNN-LSTM's chain being tests/test_lm_chain.py's) and checked as the cells the aggregate
must show missing.
"""

from __future__ import annotations

import contextlib
import csv
import io
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from builders import free_port, write_cifar10, write_pickle
from project import ROOT, environment, make_project, run

from ban_pipeline.commands import aggregate
from ban_pipeline.paper_tables import TABLES, Row, Table, load_tables

pytestmark = pytest.mark.slow  # real pipelines: processes, DVC, git, Ray

TINY = {  # each architecture's smallest useful size
    "wrn": {"depth": 10, "widen": 0.25},
    "densenet": {"layers": [1, 1, 1], "growth": 4},
    "preact_resnet": {"depth": 8, "width": 4},
    "resnet": {"depth": 8, "width": 4},
    "lstm": {"hidden": 16, "layers": 1, "embedding": None, "dropout": 0.0},
    "cnn_lstm": {"char_embedding": 4, "filter_widths": [1, 2], "filters": [4, 4], "highway_layers": 1,
                 "hidden": 16, "layers": 1, "dropout": 0.0},
}
QUICK = {"epochs": 1, "batch_size": 32, "eval_batch_size": 500, "device": "cpu", "precision": "fp32"}
QUICK_TEXT = {**QUICK, "batch_size": 4, "bptt": 10}
ROWS = {"table1": ("DenseNet-112-33",), "table2": ("DenseNet-112-33",), "table5": ("WRN-1-1",),
        "table6": ("LSTM",)}


def tiny(model: dict[str, Any]) -> dict[str, Any]:
    """``model`` at its architecture's smallest size. A DenseNet's ``layers`` replace its ``depth``: the
    CIFAR-100 DenseNet teachers become one network, trained once for Tables 1, 2 and 5."""
    size = TINY[model["arch"]]
    kept = {key: value for key, value in model.items() if not (key == "depth" and "layers" in size)}
    return {**kept, **size}


def miniature(preset: dict[str, Any]) -> dict[str, Any]:
    """The preset with tiny networks of the same architectures, trained for one epoch."""
    text = preset["data"]["name"] == "ptb"
    preset["model"] = tiny(preset["model"])
    for student in preset["students"].values():
        if "model" in student:
            student["model"] = tiny(student["model"])
    preset["train"].update(QUICK_TEXT if text else QUICK)
    if not text:
        preset["data"]["verify"] = False
    return preset


def write_cifar100_every_class(root: Path) -> None:
    """CIFAR-100's files in their layout, two training images of every class, one test image each."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, count in (("train", 200), ("test", 100)):
        write_pickle(folder / split, {"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
                                      "fine_labels": [index % 100 for index in range(count)],
                                      "coarse_labels": [0] * count})
    write_pickle(folder / "meta", {"fine_label_names": [f"fine{i:02d}" for i in range(100)],
                                   "coarse_label_names": ["c"] * 20})


def write_ptb(root: Path) -> Path:
    """Penn Treebank's three files in its layout (a leading space, ``<unk>``), from a 50-word vocabulary."""
    words = [f"w{index}" for index in range(49)] + ["<unk>"]
    rng = random.Random(0)
    root.mkdir(parents=True, exist_ok=True)
    for split, lines in (("train", 200), ("valid", 60), ("test", 60)):
        text = "".join(" " + " ".join(rng.choice(words) for _ in range(10)) + " \n" for _ in range(lines))
        (root / f"ptb.{split}.txt").write_text(text)
    return root


@dataclass
class Miniatures:
    project: Path
    work: Path  # the launcher's --work-dir: each job's log
    launched: subprocess.CompletedProcess[str]
    aggregated: str  # what the aggregation printed


@pytest.fixture(scope="module")
def miniatures(tmp_path_factory: pytest.TempPathFactory) -> Miniatures:
    root = tmp_path_factory.mktemp("miniatures")
    project = make_project(root / "project", extra=("presets", "paper"))
    tables = load_tables(ROOT / TABLES)
    left_out = students_left_out(tables)
    for name in {chain.preset for table in tables.values() for chain in table.runs.values()}:
        path = project / "presets" / f"{name}.yaml"
        preset = yaml.safe_load(path.read_text())
        for student in left_out.get(name, ()):
            del preset["students"][student]
        path.write_text(yaml.safe_dump(miniature(preset), sort_keys=False))
    run(project, "git", "commit", "-qam", "miniature presets")
    data = write_ptb(root / "data")
    write_cifar10(data)
    write_cifar100_every_class(data)
    rows = ",".join(f"{table}:{row}" for table, names in ROWS.items() for row in names)
    # Ray's temporary folder names a cluster a `ray start` left there, long gone: Ray's own default would
    # join it; the launcher, given no --address, starts a local instance (in that folder) all the same.
    ray_temp = Path(tempfile.mkdtemp(prefix="ban-ray-"))  # short: Ray's socket paths must fit 107 characters
    (ray_temp / "ray").mkdir()
    (ray_temp / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{free_port()}")
    try:
        launch = ["--table", "all", "--rows", rows, "-S", "seed=0", "-S", f"data.root={data}", "--work-dir",
                  str(root / "work")]
        launched = subprocess.run([sys.executable, "-m", "stages.launch", *launch],
                                  cwd=project, env=dict(environment(), RAY_TMPDIR=str(ray_temp)),
                                  capture_output=True, text=True, timeout=900)
    finally:
        shutil.rmtree(ray_temp, ignore_errors=True)
    every_table = ",".join(load_tables(ROOT / TABLES))
    printed = io.StringIO()  # the command the launcher's last line gives, by its main here
    with contextlib.chdir(project), contextlib.redirect_stdout(printed):
        aggregate.main(["--table", every_table])
    return Miniatures(project, root / "work", launched, printed.getvalue())


def students_left_out(tables: dict[str, Table]) -> dict[str, set[str]]:
    """Per preset, the students that only left-out rows of a launched run show: they need not train."""
    shown, kept = defaultdict(set), defaultdict(set)
    for name, table in tables.items():
        rows = selected_rows(name)
        launched = {cell.run for row in rows for cell in row.cells}
        for row in table.rows:
            for cell in (cell for cell in row.cells if cell.run in launched):
                (kept if row in rows else shown)[table.runs[cell.run].preset].add(cell.network)
    return {preset: networks - kept[preset] for preset, networks in shown.items()}


def selected_rows(name: str) -> list[Row]:
    table = load_tables(ROOT / TABLES)[name]
    return [row for row in table.rows if name not in ROWS or row.name in ROWS[name]]


def test_one_command_launches_every_table(miniatures: Miniatures) -> None:
    launched = miniatures.launched
    runs = sum(len({cell.run for row in selected_rows(name) for cell in row.cells})
               for name in load_tables(ROOT / TABLES))
    assert launched.returncode == 0, launched.stdout[-3000:] + launched.stderr[-3000:]
    first = launched.stdout.splitlines()[0]
    assert first.startswith(f"study table1-table2-table5-table6: {runs} experiments")
    assert re.search(r"Ray: \d+ CPUs, 0 GPUs \(a local instance\)", launched.stdout)
    shared = re.search(r" shared stages run once: ([^;]+);", first).group(1).split(", ")
    assert sorted(shared) == ["prepare", "student@control", "student@gen1", "teacher"]
    logs = [path.read_text() for path in miniatures.work.glob("*/logs/*.log")]
    # one teacher each: the CIFAR-100 DenseNet of Tables 1, 2 and 5, the CIFAR-10 one, the LSTM
    assert sum(log.count("Running stage 'teacher'") for log in logs) == 3
    lines = [line for line in launched.stdout.splitlines() if line.startswith("done   table")]
    assert sorted(line.split()[1].split("-")[0] for line in lines) == \
        ["table1"] * 2 + ["table2", "table5", "table6"]
    assert launched.stdout.splitlines()[-1] == (
        f"{runs} of {runs} experiments succeeded; see them with `dvc exp show`, aggregate them with "
        "`python -m stages.aggregate --table table1,table2,table5,table6`")


@pytest.mark.parametrize("name", ["table1", "table2", "table5", "table6"])
def test_each_miniature_table_is_aggregated_with_every_cell_in_the_papers_layout(miniatures: Miniatures,
                                                                                 name: str) -> None:
    table = load_tables(ROOT / TABLES)[name]
    rows = selected_rows(name)
    assert f"# {table.title}" in miniatures.aggregated  # every table at once
    out = miniatures.project / "reports" / "tables" / name
    lines = (out / "table.md").read_text().splitlines()
    assert lines[0] == f"# {table.title}"
    assert lines[4] == "| " + " | ".join(["row", "parameters (paper; ours)", *table.columns]) + " |"
    for row, line in zip(table.rows, lines[6:6 + len(table.rows)], strict=True):  # the paper's layout
        cells = [text.strip() for text in line.strip("|").split(" | ")]
        assert cells[0] == row.name
        for cell, text in zip(row.cells, cells[2:], strict=True):
            paper = "-" if cell.paper is None else re.escape(f"{cell.paper:.2f}")
            ours = r"\d+\.\d\d \(1\)" if row in rows else "missing"
            difference = r"( \([+-]\d+\.\d\d\))?" if row in rows and cell.paper is not None else ""
            assert re.match(rf"^{ours} vs {paper}{difference}$", text), text
    missing = [f"{row.name} / {column}" for row in table.rows if row not in rows for column in table.columns]
    total = len(table.columns) * len(table.rows)
    assert (lines[-1] == f"Missing ({len(missing)} of {total} cells, no finished experiment has them): "
            f"{'; '.join(missing)}") if missing else not lines[-1].startswith("Missing")
    with open(out / "cells.csv") as handle:
        cells = list(csv.DictReader(handle))
    assert [(cell["row"], cell["column"]) for cell in cells] == [
        (row.name, column) for row in table.rows for column in table.columns]
    for cell in cells:
        filled = cell["row"] in {row.name for row in rows}
        assert (cell["n"], cell["seeds"]) == (("1", "0") if filled else ("0", ""))
        assert float(cell["mean"]) > 0 if filled else cell["mean"] == ""
    assert (out / "table.png").stat().st_size > 10_000

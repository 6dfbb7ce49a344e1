"""Launching one of the paper's tables: its runs become experiments of their own presets, the dry run
prints each with its estimated cost, and missing data stops the study before anything starts.

A real git + DVC repository of the project with its presets and tables; no Ray (``--dry-run``). The
launcher runs by its ``main`` in this process (its process, exit codes and ``--help``: test_commands.py).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from builders import write_cifar10, write_cifar100
from project import make_project, run

from ban.core.errors import BanError
from ban_pipeline.commands import launch
from ban_pipeline.launch.plan import grid_experiments, plan_study
from ban_pipeline.paper_tables import run_params, table_named
from ban_pipeline.presets import estimated_gpu_hours, short_number


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("tables") / "project", extra=("presets", "paper"))


@pytest.fixture(scope="module")
def cifar100(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_cifar100(root)
    return root


def dry_run(project: Path, capsys: pytest.CaptureFixture[str], *arguments: str) -> list[str]:
    """The lines ``stages.launch ARGUMENTS --dry-run`` prints, run by its ``main`` here."""
    with contextlib.chdir(project):
        launch.main([*arguments, "--dry-run"])
    return capsys.readouterr().out.splitlines()


def refused(project: Path, *arguments: str) -> list[str]:
    """The lines of the usage error (exit 2) ``stages.launch ARGUMENTS --dry-run`` stops with."""
    with contextlib.chdir(project), pytest.raises(BanError) as raised:
        launch.main([*arguments, "--dry-run"])
    assert raised.value.exit_code == 2
    return f"error: {raised.value}".splitlines()


def test_a_tables_run_is_its_preset_with_the_runs_overrides_then_the_grids(project: Path) -> None:
    """table1's CIFAR-10 DenseNet run: the CIFAR-100 DenseNet preset on CIFAR-10, teacher, BAN and control."""
    densenet = table_named("table1", project / "paper" / "tables.yaml").runs["c10_densenet_90_60"]
    experiments = grid_experiments("t-c10_densenet_90_60", [("seed=0",), ("seed=1",)],
                                   densenet.params_file, densenet.overrides)
    planned = plan_study(project, experiments)
    assert planned.rejected == []
    prepare, *experiments = planned.jobs
    assert prepare.stage == "prepare" and prepare.params_file == "presets/cifar100-densenet-90-60.yaml"
    assert [job.name for job in experiments] == ["t-c10_densenet_90_60-01-seed_0",
                                                 "t-c10_densenet_90_60-02-seed_1"]
    for job in experiments:
        assert job.params_file == "presets/cifar100-densenet-90-60.yaml"
        assert job.overrides[:-1] == densenet.overrides and job.overrides[-1].startswith("seed=")
        params = planned.params[job.name]
        assert params.data.name == "cifar10" and params.model["growth"] == 60
        assert list(params.students) == ["gen1", "control"] and params.ensemble.members == ["gen1"]
    assert [planned.params[job.name].seed for job in experiments] == [0, 1]


def test_the_dry_run_lists_every_run_times_the_grid_with_its_cost(project: Path, cifar100: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    lines = dry_run(project, capsys, "--table", "table2", "--rows", "DenseNet-90-60,DenseNet-80-120",
                    "-S", "seed=range(0,2)", "-S", f"data.root={cifar100}")
    assert lines[0].startswith("study table2: 4 experiments of commit")
    table = table_named("table2", project / "paper" / "tables.yaml")
    hours = {run_id: estimated_gpu_hours(run_params(table.runs[run_id]))
             for run_id in ("densenet_90_60", "densenet_80_120")}
    listed = [re.match(r"^  (\S+): (.*) after shared-prepare-\w+  \[~(\S+) H100-hours\]$", line)
              for line in lines if line.startswith("  table2-")]
    assert [match.group(1) for match in listed] == [
        "table2-densenet_90_60-01-seed_0", "table2-densenet_90_60-02-seed_1",
        "table2-densenet_80_120-01-seed_0", "table2-densenet_80_120-02-seed_1"]
    assert [match.group(3) for match in listed] == [short_number(hours["densenet_90_60"])] * 2 + \
        [short_number(hours["densenet_80_120"])] * 2
    assert lines[-1].startswith(f"estimated cost: {short_number(2 * sum(hours.values()))} H100-hours for 4 "
                                "experiments")


def test_missing_data_stops_the_study_before_it_starts_naming_what_is_missing(project: Path, tmp_path: Path,
                                                                              cifar100: Path) -> None:
    lines = refused(project, "--table", "table1", "--rows", "WRN-28-2", "-S", f"data.root={tmp_path}")
    assert len(lines) == 4, lines
    assert lines[0] == ("error: data not found where the jobs read it (checked on this host; every node "
                        "must see data.root at the same path):")
    assert lines[1].startswith(f"  cifar10: {tmp_path}/cifar-10-batches-py/ lacks data_batch_1, "
                               "data_batch_2, data_batch_3, data_batch_4, data_batch_5, test_batch, "
                               "batches.meta (needed by 1: table1-c10_wrn_28_2-01-data_root_")
    assert lines[2].startswith(f"  cifar100: {tmp_path}/cifar-100-python/ lacks train, test, meta (needed "
                               "by 1: table1-c100_wrn_28_2-01-data_root_")
    assert lines[3] == ("give -S data.root=/absolute/path, or -S data.download=true, or leave those "
                        "experiments out (--rows for a table)")
    # the data in the working tree but not tracked by git: a job's clone would not have it
    local = project / "data" / "raw"
    write_cifar100(local)
    try:
        lines = refused(project, "--table", "table2", "--rows", "DenseNet-90-60")
    finally:
        run(project, "rm", "-r", str(local / "cifar-100-python"))
    assert lines[1] == (
        "  cifar100: data.root data/raw is relative, so each job reads it inside its own clone of the "
        "commit, where git tracks nothing there; give an absolute path that every node reads (needed by 1: "
        "table2-densenet_90_60-01)")


def test_several_tables_are_one_study_each_named_after_its_table(project: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    write_cifar10(tmp_path)
    write_cifar100(tmp_path)
    lines = dry_run(project, capsys, "--table", "table1,table6", "--rows", "table1:WRN-28-1",
                    "-S", "seed=0,1", "-S", f"data.root={tmp_path}")
    assert lines[0].startswith("study table1-table6: 8 experiments of commit")
    names = [line.split(":")[0].strip() for line in lines if line.startswith("  table")]
    assert names == [f"{run}-0{index}-seed_{index - 1}" for run in (
        "table1-c10_wrn_28_1", "table1-c100_wrn_28_1", "table6-cnn_lstm", "table6-lstm") for index in (1, 2)]


@pytest.mark.parametrize(("arguments", "message"), [
    (("--table", "table9"), "error: unknown table 'table9'; known: table1, table2, table5, table6"),
    (("--table", "table1", "--rows", "WRN-28-3"), "error: --rows: WRN-28-3 not in table1; its rows: "
     "WRN-28-1, WRN-28-2, WRN-28-5, WRN-28-10, DenseNet-112-33, DenseNet-90-60, DenseNet-80-80, "
     "DenseNet-80-120"),
    (("--table", "table1", "--params", "presets/ptb-lstm.yaml"),
     "error: --table runs the presets its rows name; give --table or --params, not both"),
    (("--rows", "WRN-28-1"), "error: --rows selects rows of a --table"),
    (("--table", "all", "--rows", "WRN-28-1"), "error: --rows: 'WRN-28-1': name the row as TABLE:ROW, TABLE "
     "one of table1, table2, table5, table6"),
    (("--table", "table1,table2", "--name", "mine"), "error: --name: several tables are each named after "
     "their table (as `stages.aggregate --table` reads them); give --name with one table only"),
])
def test_a_wrong_table_or_row_is_one_line(project: Path, arguments: tuple[str, ...], message: str) -> None:
    """The launcher's own error, which its process prints as ``error: ...`` and exits with (2: usage)."""
    assert refused(project, *arguments) == [message]

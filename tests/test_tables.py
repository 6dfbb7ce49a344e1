"""The paper's tables as data, their listing, and a table aggregated from finished experiments.

The published numbers are checked against a second transcription of the paper (below, typed from its
Tables 1, 2, 5 and 6 as ``../shared/PAPER.md`` and ``docs/paper.md`` list them). The aggregation runs on
``dvc exp show --json`` records written here, with values whose means, sds and intervals are computed
by hand.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from project import ROOT, environment

from ban.core.errors import BanError, ConfigError
from ban_pipeline.commands import aggregate as aggregate_command
from ban_pipeline.paper_tables import TABLES, check_cells, load_tables, run_params
from ban_pipeline.presets import estimated_gpu_hours

# The paper's numbers, row by row, in the order of its columns.
PAPER = {
    "table1": {  # CIFAR-10 teacher, BAN; CIFAR-100 teacher, BAN
        "WRN-28-1": [6.69, 6.64, 30.05, 29.43], "WRN-28-2": [5.06, 4.86, 25.32, 24.38],
        "WRN-28-5": [4.13, 4.03, 20.88, 20.93], "WRN-28-10": [3.77, 3.86, 19.08, 18.25],
        "DenseNet-112-33": [3.84, 3.61, 18.25, 16.95], "DenseNet-90-60": [3.81, 3.50, 17.69, 16.69],
        "DenseNet-80-80": [3.48, 3.49, 17.16, 16.36], "DenseNet-80-120": [3.37, 3.54, 16.87, 16.00],
    },
    "table2": {  # teacher, BAN, BAN+L, CWTM, DKPP, BAN-1, BAN-2, BAN-3, Ens*2, Ens*3
        "DenseNet-112-33": [18.25, 16.95, 17.68, 17.84, 17.84, 17.61, 17.22, 16.59, 15.77, 15.68],
        "DenseNet-90-60": [17.69, 16.69, 16.93, 17.42, 17.43, 16.62, 16.44, 16.72, 15.39, 15.74],
        "DenseNet-80-80": [17.16, 16.36, 16.50, 17.16, 16.84, 16.26, 16.30, 15.50, 15.46, 15.14],
        "DenseNet-80-120": [16.87, 16.00, 16.41, 17.12, 16.34, 16.13, 16.13, None, 15.13, 14.90],
    },
    "table5": {  # baseline, BAN
        "Pre-ResNet-14-0.5": [20.28, 18.8], "Pre-ResNet-14-1": [18.84, 17.39], "WRN-1-1": [20.4, 19.12],
        "WRN-4-0.5": [19.63, 17.13], "WRN-4-1": [18.77, 17.18],
    },
    "table6": {  # teacher validation, test; BAN+L validation, test
        "CNN-LSTM": [83.69, 80.05, 80.27, 76.97], "LSTM": [75.11, 71.87, 71.19, 68.56],
    },
}
PARAMETERS = {"WRN-28-1": 0.38, "WRN-28-2": 1.48, "WRN-28-5": 9.16, "WRN-28-10": 36.5,
              "DenseNet-112-33": 6.3, "DenseNet-90-60": 16.1, "DenseNet-80-80": 22.4, "DenseNet-80-120": 50.4,
              "CNN-LSTM": 19, "LSTM": 52}


def test_the_published_numbers_are_the_papers() -> None:
    tables = load_tables(ROOT / TABLES)
    assert list(tables) == list(PAPER)
    for name, rows in PAPER.items():
        table = tables[name]
        assert {row.name: [cell.paper for cell in row.cells] for row in table.rows} == rows
        for row in table.rows:
            assert row.parameters == PARAMETERS.get(row.name)


def test_every_cell_names_a_network_and_metric_its_runs_chain_reports() -> None:
    """Each run resolves (preset, overrides) and passes every stage's checks; the cells' networks are in
    its chain; table1's CIFAR-100 rows run the CIFAR-10 WRN presets on CIFAR-100, and its DenseNet rows
    keep teacher, BAN and control of the Table 2 presets."""
    tables = load_tables(ROOT / TABLES)
    params = {name: check_cells(table) for name, table in tables.items()}
    assert params["table1"]["c100_wrn_28_10"].data.name == "cifar100"
    assert params["table1"]["c100_wrn_28_10"].model == params["table1"]["c10_wrn_28_10"].model
    assert list(params["table1"]["c10_densenet_80_120"].students) == ["gen1", "control"]
    assert params["table1"]["c10_densenet_80_120"].data.name == "cifar10"
    assert [cell.network for cell in tables["table2"].rows[0].cells] == [
        "gen0", "gen1", "banl", "cwtm", "dkpp", "gen1", "gen2", "gen3", "ens2", "ens3"]
    assert [cell.metric for cell in tables["table6"].rows[0].cells] == [
        "valid_perplexity", "test_perplexity", "valid_perplexity", "test_perplexity"]


def write_tables(tmp_path: Path, edit: dict[str, Any]) -> Path:
    """``paper/tables.yaml`` with table6's entries replaced by ``edit``."""
    tables = yaml.safe_load((ROOT / TABLES).read_text())
    tables["table6"].update(edit)
    path = tmp_path / "tables.yaml"
    path.write_text(yaml.safe_dump(tables))
    return path


@pytest.mark.parametrize(("edit", "message"), [
    ({"metric": "test_accuracy"}, "table6.metric: unknown metric 'test_accuracy'; valid: test_error, "
     "test_perplexity, valid_perplexity"),
    ({"rows": [{"name": "LSTM", "run": "lstm", "paper": [75.11, 71.87]}]}, "table6.rows[0].paper: 2 entries "
     "for 4 columns"),
    ({"rows": [{"name": "LSTM", "run": "gru", "paper": [1, 2, 3, 4]}]}, "table6.rows[0]: column 'teacher "
     "(validation)' needs a run among cnn_lstm, lstm"),
    ({"rows": [{"name": "LSTM", "run": "lstm", "paper": [1, 2, 3, "4"]}]},
     "table6.rows[0].paper[3]: expected float, got str '4'"),
    ({"rows": [{"name": "LSTM", "run": "lstm", "papr": [1, 2, 3, 4]}]},
     "table6.rows[0].papr: unknown key (did you mean 'paper'?)"),
    ({"runs": {"lstm": {"preset": "ptb-lstm", "sets": []}}},
     "table6.runs.lstm.sets: unknown key (did you mean 'set'?)"),
    ({"titel": "Table 6"}, "table6.titel: unknown key (did you mean 'title'?)"),
    ({"runs": {"lstm": {"preset": "ptb-lstm"}, "Big LSTM": {"preset": "ptb-lstm"}}}, "table6.runs.Big LSTM: "
     "a run id is lower-case letters, digits and _"),
    ({"runs": {"lstm": {"preset": "ptb-lstm"}, "cnn_lstm": {"preset": "ptb-cnn-lstm"},
               "gru": {"preset": "ptb-lstm"}}}, "table6.runs: gru in no cell"),
])
def test_a_mistake_in_the_tables_file_is_one_line_naming_where(tmp_path: Path, edit: dict[str, Any],
                                                                 message: str) -> None:
    path = write_tables(tmp_path, edit)
    with pytest.raises(ConfigError) as raised:
        load_tables(path)
    assert str(raised.value) == f"{path}: {message}"


def test_a_cell_naming_a_network_its_chain_lacks_is_refused(tmp_path: Path) -> None:
    columns = yaml.safe_load((ROOT / TABLES).read_text())["table6"]["columns"]
    columns[3]["network"] = "gen3"
    table = load_tables(write_tables(tmp_path, {"columns": columns}))["table6"]
    with pytest.raises(ConfigError, match=r"^table6, row CNN-LSTM, column BAN\+L \(test\): run cnn_lstm has "
                       r"no network 'gen3'; it has gen0, gen1, gen2, ens2$"):
        check_cells(table)


def test_a_runs_override_that_does_not_apply_is_refused_with_dvcs_reason(tmp_path: Path) -> None:
    runs = {"lstm": {"preset": "ptb-lstm", "set": ["~students.gen9"]}, "cnn_lstm": {"preset": "ptb-cnn-lstm"}}
    table = load_tables(write_tables(tmp_path, {"runs": runs}))["table6"]
    with pytest.raises(ConfigError, match=r"^run lstm: ~students.gen9: Could not delete from config. "
                       r"'students.gen9' does not exist.$"):
        check_cells(table)


def tables_command(*arguments: str) -> str:
    result = subprocess.run([sys.executable, "-m", "stages.tables", *arguments], cwd=ROOT, env=environment(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow  # the command as a process (seconds of imports)
def test_the_listing_shows_each_tables_rows_runs_and_cost_for_n_seeds() -> None:
    from ban_pipeline.presets import short_number

    table6 = load_tables(ROOT / TABLES)["table6"]
    hours = {run_id: estimated_gpu_hours(run_params(run)) for run_id, run in table6.runs.items()}
    listing = tables_command("table6", "--seeds", "3").splitlines()
    assert listing[0] == f"# {table6.title} (`table6`)"
    assert "| LSTM | 4 | lstm | 52M | 51.03M |" in listing  # the paper's count beside ours
    assert "| CNN-LSTM | 4 | cnn_lstm | 19M | 19.37M |" in listing
    assert (f"| lstm | ptb-lstm | - | 3: lstm 51.03M | {short_number(hours['lstm'])} | "
            f"{short_number(3 * hours['lstm'])} |") in listing
    total = short_number(3 * sum(hours.values()))
    assert listing[-1].startswith(f"6 experiments, about {total} H100-hours for 3 seeds")
    overview = tables_command().splitlines()
    assert [line.split(" | ")[0] for line in overview[2:]] == ["| table1", "| table2", "| table5", "| table6"]
    assert overview[-1].startswith(f"| table6 | 2 | 2 | 6 | {short_number(sum(hours.values()))} | "
                                   f"{short_number(5 * sum(hours.values()))} |")


@pytest.mark.slow  # the command as a process (seconds of imports)
def test_a_listing_read_in_part_ends_quietly() -> None:
    """``python -m stages.tables | head -2``: the reader is gone before the listing is written (it takes
    seconds to compute); no traceback, the exit code a shell gives a broken pipe."""
    listing = subprocess.Popen([sys.executable, "-m", "stages.tables"], cwd=ROOT, env=environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert listing.stdout is not None
    listing.stdout.close()
    _, errors = listing.communicate(timeout=300)
    assert (listing.returncode, errors) == (141, b"")


# --- aggregation -------------------------------------------------------------------------------------


def experiment(name: str, seed: int, summary: dict[str, dict[str, float]], timestamp: str,
               **params: Any) -> dict[str, Any]:
    """One finished experiment as ``dvc exp show --json`` gives it: each network's numbers in its stage's
    metrics file (``metrics/gen1.json``; ensembles together in ``metrics/ensemble.json``)."""
    files = {f"metrics/{name}.json": values for name, values in summary.items()
             if not name.startswith("ens")}
    ensembles = {name: values for name, values in summary.items() if name.startswith("ens")}
    metrics = {path: {"data": values}
               for path, values in {**files, "metrics/ensemble.json": ensembles}.items()}
    data = {"timestamp": timestamp, "params": {"params.yaml": {"data": {"seed": seed, **params}}},
            "metrics": metrics}
    return {"name": name, "revs": [{"rev": f"{seed:040d}", "name": name, "data": data}], "executor": None}


def lstm_summary(valid: float, test: float, student_valid: float, student_test: float) -> dict[str, Any]:
    return {"gen0": {"params": 51_034_000, "valid_perplexity": valid, "test_perplexity": test},
            "gen1": {"params": 51_034_000, "valid_perplexity": student_valid,
                     "test_perplexity": student_test}}


def aggregate(tmp_path: Path, capsys: pytest.CaptureFixture[str], experiments: list[dict[str, Any]],
              *arguments: str) -> tuple[str, str]:
    """``stages.aggregate --table table6`` of a saved ``dvc exp show --json``, run by its ``main`` here;
    what it printed to stdout and to stderr."""
    show = tmp_path / "experiments.json"
    show.write_text(json.dumps([{"rev": "workspace"}, {"rev": "0" * 40, "experiments": experiments}]))
    aggregate_command.main(["--table", "table6", "--json", str(show), "--out", str(tmp_path / "out"),
                            *arguments])
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_a_table_is_aggregated_cell_by_cell_beside_the_papers_numbers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """LSTM over three seeds (seed 2 launched twice: the newest counts), CNN-LSTM missing; another
    study's experiment and an unfinished one are left out."""
    lstm = dict(data={"name": "ptb"}, model={"arch": "lstm"})
    runs = [("table6-lstm-01-seed_0", 0, (78, 72, 71, 68)), ("table6-lstm-02-seed_1", 1, (79, 73, 72, 69)),
            ("table6-lstm-03-seed_2", 2, (99, 99, 99, 99)), ("table6-lstm-03-seed_2", 2, (80, 74, 73, 70)),
            ("other-lstm-01-seed_3", 3, (1, 1, 1, 1))]
    experiments = [experiment(name, seed, lstm_summary(*values), f"2026-01-01T00:00:0{index}", **lstm)
                   for index, (name, seed, values) in enumerate(runs)]
    experiments.append({**experiment("table6-cnn_lstm-01-seed_0", 0, {}, "2026-01-01T00:00:05", **lstm),
                        "executor": {"state": "failed"}})
    out, err = aggregate(tmp_path, capsys, experiments)
    assert err.strip() == ("not finished (queued, running or failed), left out: "
                                     "table6-cnn_lstm-01-seed_0")
    text = (tmp_path / "out" / "table.md").read_text()
    assert text == out
    lines = text.splitlines()
    # teacher validation 78, 79, 80: mean 79, sd 1, interval 79 ± t(0.975, 2) / sqrt(3) = 79 ± 2.484
    # (75.11 outside: marked); test 72, 73, 74 (71.87 inside: 70.52 to 75.48); student 71, 72, 73
    # (71.19 inside); 68, 69, 70 (68.56 inside)
    assert lines[7] == ("| LSTM | 52M; 51.03M | 79.00 ± 1.00 (3) vs 75.11 (+3.89)* | 73.00 ± 1.00 (3) vs "
                        "71.87 (+1.13) | 72.00 ± 1.00 (3) vs 71.19 (+0.81) | 69.00 ± 1.00 (3) vs 68.56 "
                        "(+0.44) |")
    assert lines[6] == ("| CNN-LSTM | 19M; - | missing vs 83.69 | missing vs 80.05 | missing vs 80.27 | "
                        "missing vs 76.97 |")
    assert "| lstm | 0, 1, 2 |" in lines and "| cnn_lstm | none |" in lines
    assert lines[-1] == ("Missing (4 of 8 cells, no finished experiment has them): CNN-LSTM / teacher "
                         "(validation); CNN-LSTM / teacher (test); CNN-LSTM / BAN+L (validation); CNN-LSTM / "
                         "BAN+L (test)")
    with open(tmp_path / "out" / "cells.csv") as handle:
        cells = list(csv.DictReader(handle))
    assert len(cells) == 8
    teacher = cells[4]
    half = 4.3027 * 1.0 / math.sqrt(3)  # t(0.975, 2) x sd / sqrt(n) = 2.4842
    assert (teacher["row"], teacher["column"], teacher["network"], teacher["metric"]) == (
        "LSTM", "teacher (validation)", "gen0", "valid_perplexity")
    assert float(teacher["ci_low"]) == pytest.approx(79 - half, abs=1e-3)
    assert teacher["paper_outside_ci"] == "True" and cells[6]["paper_outside_ci"] == "False"
    assert teacher["seeds"] == "0 1 2" and cells[0]["n"] == "0"
    assert (tmp_path / "out" / "table.png").stat().st_size > 10_000


def test_experiments_of_one_run_that_differ_beyond_the_seed_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    experiments = [
        experiment("table6-lstm-01-seed_0_kd_mode_ban", 0, lstm_summary(1, 2, 3, 4), "2026-01-01T00:00:00",
                   kd={"mode": "ban"}),
        experiment("table6-lstm-02-seed_0_kd_mode_cwtm", 0, lstm_summary(1, 2, 3, 4), "2026-01-01T00:00:01",
                   kd={"mode": "cwtm"}),
    ]
    with pytest.raises(BanError) as refused:
        aggregate(tmp_path, capsys, experiments)
    assert refused.value.exit_code == 1
    assert str(refused.value) == ("run lstm: its experiments differ in kd.mode, not only in the seed; launch "
                                  "each variant under its own --name and aggregate it with that --name")


def test_a_table_with_no_experiment_of_its_name_says_so_and_shows_every_cell_missing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, err = aggregate(tmp_path, capsys, [], "--name", "mine")
    assert "warning: no finished experiment is named mine-<run>-...: every cell is missing" in err
    assert "Missing (8 of 8 cells" in out


def test_several_tables_are_aggregated_each_into_its_own_folder(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``--table table5,table6``, the command a launch of both tables ends with: each table from the
    experiments named after it, into ``reports/tables/<table>``; options of one table refused."""
    shutil.copytree(ROOT / "paper", tmp_path / "paper")
    monkeypatch.chdir(tmp_path)
    lstm = dict(data={"name": "ptb"}, model={"arch": "lstm"})
    show = tmp_path / "experiments.json"
    finished = experiment("table6-lstm-01-seed_0", 0, lstm_summary(78, 72, 71, 68), "2026-01-01T00:00:00",
                          **lstm)
    show.write_text(json.dumps([{"rev": "workspace"}, {"rev": "0" * 40, "experiments": [finished]}]))
    aggregate_command.main(["--table", "table5,table6", "--json", str(show)])
    table6 = (tmp_path / "reports/tables/table6/table.md").read_text().splitlines()
    assert table6[7].startswith("| LSTM | 52M; 51.03M | 78.00 (1) vs 75.11 (+2.89) |")
    table5 = (tmp_path / "reports/tables/table5/table.md").read_text().splitlines()
    assert table5[0] == f"# {load_tables(ROOT / TABLES)['table5'].title}"
    assert table5[-1].startswith("Missing (")  # no experiment is named table5-...
    for option in (["--name", "mine"], ["--out", "elsewhere"], ["--record", "record.json"]):
        with pytest.raises(ConfigError, match="give --name, --out or --record with one table only"):
            aggregate_command.main(["--table", "table5,table6", "--json", str(show), *option])


def test_a_single_seed_has_no_interval_and_marks_nothing() -> None:
    from ban_pipeline.reporting.table_results import CellResult, cell_text

    one = CellResult("LSTM", "teacher (test)", "lstm", "gen0", "test_perplexity", 71.87, (0,), (80.0,))
    assert math.isnan(one.interval[0]) and not one.paper_outside
    assert cell_text(one) == "80.00 (1) vs 71.87 (+8.13)"
    assert cell_text(CellResult("DenseNet-80-120", "BAN-3", "r", "gen3", "test_error", None, (0, 1),
                                (16.0, 17.0))) == "16.50 ± 0.71 (2) vs -"

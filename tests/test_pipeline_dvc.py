"""The born-again chain under real DVC, in a real temporary git repository."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import torch
import yaml
from project import Reproduced, run, stages_run

from ban_pipeline.reporting.experiments import flatten

pytestmark = pytest.mark.slow  # real pipelines: processes, DVC, git

GENERATIONS = ("gen0", "gen1", "gen2")


@pytest.fixture(scope="module")
def project(reproduced_chain: Reproduced, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed project after its first ``dvc repro``, which ran every stage."""
    assert stages_run(reproduced_chain.output, validate=True) == [
        "validate", "prepare", "teacher", "student@gen1", "student@gen2", "ensemble", "evaluate"]
    return reproduced_chain.copy(tmp_path_factory.mktemp("chain") / "project")


def test_repro_writes_every_declared_output(project: Path) -> None:
    for name in GENERATIONS:
        checkpoint = torch.load(project / f"models/{name}.pt", weights_only=True)
        assert checkpoint["generation"] == name and checkpoint["arch"] == "resnet"
        predictions = torch.load(project / f"preds/{name}.pt", weights_only=True)
        test = predictions["splits"]["test"]
        assert torch.allclose(test["probs"].sum(1), torch.ones(len(test["probs"])), atol=1e-5)
        metrics = json.loads((project / f"metrics/{name}.json").read_text())
        wrong = (test["probs"].argmax(1) != test["targets"]).double().mean().item()
        assert metrics["test_error"] == pytest.approx(100 * wrong) and metrics["epochs"] == 2
        assert metrics["test_nll"] == pytest.approx(-test["target_prob"].double().log().mean().item())
        assert all(isinstance(value, int | float) for value in metrics.values())  # numbers only
        trained_with = predictions["metrics"]  # what it trained with, as resolved, beside its predictions
        assert trained_with["precision"] == "fp32" and trained_with["device"].startswith("cpu")
        assert (project / f"dvclive/{name}/plots/metrics/train/loss.tsv").read_text().count("\n") == 3
    summary = json.loads((project / "metrics/summary.json").read_text())
    assert set(summary) == {*GENERATIONS, "ens2"}
    table = (project / "reports/results.md").read_text()
    assert re.search(r"\|\s+gen2 \|\s+student \|\s+gen1 \|", table)
    header, _, *rows = table.splitlines()[2:]
    columns = [cell.strip() for cell in header.split("|")]
    for row in rows:  # each generation says the precision and device it trained with; ensembles none
        cells = dict(zip(columns, (cell.strip() for cell in row.split("|")), strict=True))
        generation = cells["kind"] != "ensemble"
        assert (cells["precision"], cells["device"][:4]) == (("fp32", "cpu:") if generation else ("", ""))
    assert (project / "reports/generations.png").read_bytes()[:4] == b"\x89PNG"


def test_exp_show_gives_each_number_of_the_chain_once(project: Path) -> None:
    """``dvc exp show`` lists every metric of every generation and ensemble once, numbers only; the
    evaluate stage's one metric of its own, each student's agreement with its teacher, is among them."""
    shown = run(project, "dvc", "exp", "show", "--csv").stdout.splitlines()
    header, *rows = csv.reader(shown)
    workspace = next(values for values in (dict(zip(header, row, strict=True)) for row in rows)
                     if values["rev"] == "workspace")
    params = set(flatten(yaml.safe_load((project / "params.yaml").read_text())))
    fixed = {"Experiment", "rev", "typ", "Created", "parent", "State", "Executor"}
    metric_columns = [column for column in header if column not in fixed | params
                      and not (project / column).exists()]  # the rest are the stages' dependencies
    networks = [network_metric(column) for column in metric_columns]
    assert len(networks) == len(set(networks)), sorted(networks)
    assert all(float(workspace[column]) >= 0 for column in metric_columns)  # no text (precision, device)
    files = {name: json.loads((project / f"metrics/{name}.json").read_text()) for name in GENERATIONS}
    expected = {(name, metric) for name, values in files.items() for metric in values}
    expected |= {("ens2", "test_error"), ("ens2", "test_nll"), ("gen1", "agreement"), ("gen2", "agreement")}
    assert set(networks) == expected
    summary = json.loads((project / "metrics/summary.json").read_text())  # all of them, in one file
    assert {(name, metric) for name, values in summary.items() for metric in values} == expected


def network_metric(column: str) -> tuple[str, str]:
    """``metrics/gen1.json:test_error``, ``metrics/ensemble.json:ens2.test_error`` or (a name no other
    file has) ``gen1.agreement``, as (network, metric)."""
    path, _, key = column.rpartition(":")
    stem = Path(path).stem
    if stem in GENERATIONS:
        return stem, key
    network, _, metric = key.partition(".")
    return network, metric


def test_students_learn_from_their_teacher(project: Path) -> None:
    gen1 = torch.load(project / "preds/gen1.pt", weights_only=True)
    assert gen1["teacher"] == "gen0"
    assert "analysis/teacher_max_prob" in gen1["history"][-1]
    gen0 = torch.load(project / "preds/gen0.pt", weights_only=True)
    assert not any(key.startswith("analysis/") for key in gen0["history"][-1])
    # the teacher's confidence on the true class, last epoch, is in the metrics studies record
    metrics = {name: json.loads((project / f"metrics/{name}.json").read_text()) for name in ("gen0", "gen1")}
    assert metrics["gen1"]["teacher_true_prob"] == gen1["history"][-1]["analysis/teacher_true_prob"]
    assert "teacher_true_prob" not in metrics["gen0"]


def test_second_repro_does_nothing(project: Path) -> None:
    """Only ``validate`` runs (on every repro), and the code records it rewrites are as they were."""
    records = {path.name: path.read_bytes() for path in (project / "code").iterdir()}
    assert stages_run(run(project, "dvc", "repro").stdout, validate=True) == ["validate"]
    assert {path.name: path.read_bytes() for path in (project / "code").iterdir()} == records
    assert sorted(records) == ["gen0.json", "gen1.json", "gen2.json", "prepare.json"]


@pytest.mark.parametrize("command", [("dvc", "repro"), ("dvc", "exp", "run")])
def test_a_misspelt_key_fails_although_no_stage_reads_it(project: Path, command: tuple[str, ...]) -> None:
    """``kdd`` is in no stage's params: only the validate stage, which depends on the whole file, sees it."""
    params = project / "params.yaml"
    committed = params.read_text()
    params.write_text(committed + "kdd:\n  mode: cwtm\n")
    try:
        result = run(project, *command, check=False)
    finally:
        params.write_text(committed)
    assert result.returncode != 0
    assert "error: kdd: unknown key (did you mean 'kd'?)" in result.stderr.splitlines()
    assert stages_run(result.stdout, validate=True) == ["validate"]


def test_adding_a_generation_runs_only_it_and_the_summaries(project: Path) -> None:
    result = run(project, "dvc", "exp", "run", "-S", "+students.gen3={teacher: gen2}")
    assert stages_run(result.stdout) == ["student@gen3", "ensemble", "evaluate"]


def test_exp_show_and_metrics_diff_list_every_generation(project: Path) -> None:
    shown = json.loads(run(project, "dvc", "exp", "show", "--json").stdout)
    workspace = next(entry for entry in shown if entry["rev"] == "workspace")["data"]["metrics"]
    for name in GENERATIONS:
        written = json.loads((project / f"metrics/{name}.json").read_text())
        assert workspace[f"metrics/{name}.json"]["data"]["test_error"] == written["test_error"]
    assert workspace["metrics/ensemble.json"]["data"]["ens2"]["test_error"] >= 0
    (project / "metrics/gen1.json").write_text(json.dumps({"test_error": 99.0}))
    diff = run(project, "dvc", "metrics", "diff", "HEAD").stdout
    assert "metrics/gen1.json" in diff and "99" in diff


def test_gate_fails_on_a_regression_and_passes_within_tolerance(project: Path) -> None:
    summary_path = project / "metrics/summary.json"
    summary = json.loads(summary_path.read_text())
    committed = json.loads(run(project, "git", "show", "HEAD:metrics/summary.json").stdout)
    before = {name: values["test_error"] for name, values in committed.items()}
    summary["gen2"]["test_error"] += 0.4
    summary_path.write_text(json.dumps(summary))
    gate = ("python", "-m", "stages.gate", "--against", "HEAD")
    passed = run(project, *gate, "--tolerance", "0.5", check=False)
    assert passed.returncode == 0, passed.stderr
    summary["ens2"]["test_error"] += 2.0
    summary_path.write_text(json.dumps(summary))
    failed = run(project, *gate, check=False)
    assert failed.returncode == 1
    assert "| ens2 | test_error |" in failed.stdout and "regressed" in failed.stdout
    assert "gate failed: ens2 test_error +2.00 (beyond the tolerance 1)" in failed.stderr  # the default
    summary["ens2"]["test_error"] -= 2.0
    summary["gen1"]["test_error"] = float("nan")  # written by json as NaN
    del summary["gen2"]
    summary_path.write_text(json.dumps(summary))
    closed = run(project, *gate, check=False)
    assert closed.returncode == 1
    assert closed.stderr.splitlines() == [
        f"gate failed: gen1 test_error is nan (was {before['gen1']:.2f})",
        f"gate failed: gen2 test_error is missing (was {before['gen2']:.2f})"]
    run(project, "git", "checkout", "--", "metrics/summary.json")


def cached(output: str) -> list[str]:
    """Names of the stages a ``dvc repro``/``dvc exp run`` output says it restored from the run-cache."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Stage '") and
            "is cached - skipping run" in line]


def test_changing_kd_mode_reruns_only_the_students_and_returning_restores_them(project: Path) -> None:
    """Another objective trains the students again, not prepare or the teacher; no train stage has a
    persistent output, so DVC run-caches them, and going back restores the students instead of training."""
    run(project, "git", "reset", "-q", "--hard")  # the committed chain, whatever the tests before applied
    run(project, "dvc", "checkout", "-q")
    other = run(project, "dvc", "exp", "run", "-S", "kd.mode=cwtm")
    assert stages_run(other.stdout) == ["student@gen1", "student@gen2", "ensemble", "evaluate"]
    back = run(project, "dvc", "exp", "run", "-S", "kd.mode=ban")
    assert {"student@gen1", "student@gen2"} <= set(cached(back.stdout))
    assert not any(stage.startswith(("teacher", "student")) for stage in stages_run(back.stdout))


def test_gate_reproduces_the_revision_here_instead_of_reading_its_committed_metrics(project: Path) -> None:
    """A summary committed from another machine (here: every error 5 points lower) fails the plain gate;
    ``--reproduce`` computes the revision on this machine, restoring what this run shares from the
    run-cache instead of training it, and finds no change."""
    run(project, "git", "reset", "-q", "--hard")
    run(project, "dvc", "checkout", "-q")
    summary_path = project / "metrics/summary.json"
    ours = summary_path.read_text()
    elsewhere = {name: {**values, "test_error": values["test_error"] - 5}
                 for name, values in json.loads(ours).items()}
    summary_path.write_text(json.dumps(elsewhere))
    run(project, "git", "commit", "-q", "-m", "metrics from another machine", "metrics/summary.json")
    summary_path.write_text(ours)
    gate = ("python", "-m", "stages.gate", "--against", "HEAD")
    try:
        plain = run(project, *gate, check=False)
        reproduced = run(project, *gate, "--reproduce", check=False)
    finally:
        run(project, "git", "reset", "-q", "--hard", "HEAD~1")
    assert plain.returncode == 1 and "regressed" in plain.stdout
    assert reproduced.returncode == 0, reproduced.stderr
    assert reproduced.stdout.count("| +0.00 | ok |") == len(json.loads(ours)) == 4  # gen0-2 and ens2
    assert {"teacher", "student@gen1", "student@gen2"} <= set(cached(reproduced.stderr))
    assert not {"prepare", "teacher", "student@gen1", "student@gen2"} & set(stages_run(reproduced.stderr))
    assert len(run(project, "git", "worktree", "list").stdout.splitlines()) == 1  # the temporary one is gone

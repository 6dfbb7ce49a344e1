"""Multi-seed studies: the statistics by hand, and ``stages.aggregate`` on real queued DVC experiments.

The study runs a chain with a control (``kd: {mode: none}``) over two seeds through
``dvc exp run --queue`` and ``dvc queue start -j 2``: side by side, each in a temporary workspace of its
own. Expected values are read from the experiments' own commits (``git show``), not through
``dvc exp show``.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import dvc.api
import pandas as pd
import pytest
import yaml
from project import make_project, run, wait_for_queue
from scipy import stats
from stage_process import prepare, train

from ban.core.errors import BanError, ConfigError
from ban_pipeline.reporting.comparisons import comparisons
from ban_pipeline.reporting.experiments import FinishedExperiment, variant_labels
from ban_pipeline.reporting.significance import paired_tests
from ban_pipeline.reporting.study_frame import study_frame, summary
from stages import aggregate

CONTROL = {"teacher": "gen0", "kd": {"mode": "none"}}
CHAIN = {"train": {"epochs": 1}, "students": {"gen1": {"teacher": "gen0"}, "control": CONTROL},
         "ensemble": {"members": ["gen1"]}}
STUDY = {**CHAIN, "students": {"control": CONTROL}, "ensemble": {"members": ["control"]}}


def test_paired_tests_match_the_textbook_formulas() -> None:
    a, b = [3.0, 5.0, 4.0, 6.5, 5.0], [2.0, 3.0, 1.0, 2.5, 5.5]
    d = [x - y for x, y in zip(a, b, strict=True)]  # 1, 2, 3, 4, -0.5
    t = statistics.mean(d) / (statistics.stdev(d) / math.sqrt(len(d)))
    t_test, wilcoxon = paired_tests(a, b)
    assert t_test == pytest.approx(2 * stats.t.sf(abs(t), len(d) - 1), rel=1e-9)
    # Signed ranks: only -0.5 (rank 1) is negative, so W = 1; of the 2^5 sign patterns, two have W <= 1.
    assert wilcoxon == pytest.approx(2 * 2 / 32)


def test_paired_tests_are_undefined_without_a_difference_or_a_second_pair() -> None:
    assert all(math.isnan(p) for p in paired_tests([1.0, 2.0], [1.0, 2.0]))
    assert all(math.isnan(p) for p in paired_tests([1.0], [0.0]))


def chain_run(name: str, seed: int, students: dict[str, Any] | None = None,
              **changes: Any) -> FinishedExperiment:
    """A finished run of ``CHAIN`` (or of ``students``) whose every network has test error 10 + seed."""
    params = {"seed": seed, **CHAIN, **({"students": students} if students else {}), **changes}
    names = ["gen0", *params["students"]]
    metrics = {f"metrics/{n}.json": {"test_error": 10.0 + seed, "train_error": 1.0} for n in names}
    return FinishedExperiment(name, f"2026-01-0{seed + 1}", params, {**metrics, "metrics/ensemble.json": {}})


def test_variants_are_named_by_the_params_that_differ_and_repeats_keep_the_newest() -> None:
    dkpp = {"kd": {"mode": "dkpp"}}
    runs = [chain_run("a", 0), chain_run("b", 1), chain_run("c", 0, **dkpp),
            FinishedExperiment("a-again", "2026-02-01", {"seed": 0, **CHAIN}, {**chain_run("x", 0).metrics,
                                                                  "metrics/gen1.json": {"test_error": 3.0}})]
    labels = variant_labels(runs)
    assert labels == {"a": "kd.mode=-", "b": "kd.mode=-", "c": "kd.mode=dkpp", "a-again": "kd.mode=-"}
    frame, dropped = study_frame(runs)
    assert dropped == 3  # the older seed-0 run of the default variant: gen0, gen1 and control
    gen1 = frame[(frame["name"] == "gen1") & (frame["variant"] == "kd.mode=-")].set_index("seed")
    assert gen1["test_error"].to_dict() == {0: 3.0, 1: 11.0}
    table = summary(frame, ["test_error"]).set_index(["variant", "name"])
    assert table.loc[("kd.mode=-", "gen1"), "test_error_mean"] == 7.0
    assert table.loc[("kd.mode=-", "gen1"), "test_error_std"] == pytest.approx(math.sqrt(32))


def test_students_meet_gen0_their_teacher_and_the_control_of_their_network() -> None:
    small = {"arch": "resnet", "depth": 8, "width": 2}
    students = {**CHAIN["students"], "gen2": {"teacher": "gen1"},
                "small": {"teacher": "gen0", "model": small},
                "small_alone": {"teacher": "gen0", "model": small, "kd": {"mode": "none"}}}
    frame, _ = study_frame([chain_run("a", 0, students)])
    found = {(c.name, c.reference, c.role) for c in comparisons(frame)}
    assert found == {("gen1", "gen0", "gen0"), ("gen1", "control", "control"),
                     ("gen2", "gen0", "gen0"), ("gen2", "gen1", "teacher"), ("gen2", "control", "control"),
                     ("small", "gen0", "gen0"), ("small", "small_alone", "control"),
                     ("control", "gen0", "gen0"), ("small_alone", "gen0", "gen0")}


def test_variants_meet_the_same_network_of_the_first_variant() -> None:
    frame, _ = study_frame([chain_run("a", 0), chain_run("c", 0, kd={"mode": "dkpp"})])
    base, other = "kd.mode=-", "kd.mode=dkpp"
    between = {(c.name, c.reference_variant, c.reference) for c in comparisons(frame) if c.role == "variant"}
    assert between == {(name, base, name) for name in ("gen0", "gen1", "control")}
    assert all(c.variant == other for c in comparisons(frame) if c.role == "variant")


def committed(project: Path, rev: str, path: str) -> Any:
    return yaml.safe_load(run(project, "git", "show", f"{rev}:{path}").stdout)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two seeds of a chain whose only student is a control, up to that student's stage, in a real
    git + DVC repository (kept short: each stage is a process that imports torch); and the error of
    an aggregate run before any experiment."""
    project = make_project(tmp_path_factory.mktemp("study"), STUDY)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        with pytest.raises(BanError) as before:
            aggregate.main([])
        run(project, "dvc", "exp", "run", "--queue", "-S", "seed=range(0,2)", "student@control")
        run(project, "dvc", "queue", "start", "-j", "2")
        try:
            status = wait_for_queue(project)
        finally:
            run(project, "dvc", "queue", "stop", "--kill", check=False)
        aggregate.main(["--out", "reports/study"])
    refs = run(project, "git", "for-each-ref", "refs/exps", "--format=%(objectname) %(refname)").stdout
    revs = [line.split()[0] for line in refs.splitlines() if "/celery/" not in line]  # not the queue's own
    return {"project": project, "before": str(before.value), "revs": revs, "status": status}


@pytest.mark.slow
def test_queued_experiments_run_side_by_side_without_clobbering(study: dict[str, Any],
                                                                 tmp_path: Path) -> None:
    """Each experiment's teacher has the metrics of its seed trained alone, and the workspace the queue ran
    from is left untouched."""
    project = study["project"]
    assert study["status"].count("Success") == 2
    assert not (project / "models").exists() and not (project / "data/prepared").exists()
    alone = make_project(tmp_path / "alone", STUDY)
    prepare(alone)
    metrics = []
    for rev in study["revs"]:
        seed = committed(project, rev, "params.yaml")["seed"]
        params = yaml.safe_load((alone / "params.yaml").read_text())
        (alone / "params.yaml").write_text(yaml.safe_dump({**params, "seed": seed}, sort_keys=False))
        assert train(alone, "gen0").returncode == 0
        metrics.append(committed(project, rev, "metrics/gen0.json"))
        assert metrics[-1] == json.loads((alone / "metrics/gen0.json").read_text()), seed
    assert metrics[0] != metrics[1]


@pytest.mark.slow
def test_aggregate_without_experiments_says_how_to_make_them(study: dict[str, Any]) -> None:
    assert study["before"].startswith("no finished experiment: queue some with `dvc exp run --queue")


@pytest.mark.slow
def test_aggregate_reads_every_queued_experiment(study: dict[str, Any]) -> None:
    project, out = study["project"], study["project"] / "reports/study"
    assert {p.name for p in out.iterdir()} == {"study.md", "study.png", "runs.csv", "summary.csv",
                                               "differences.csv"}
    frame = pd.read_csv(out / "runs.csv")
    expected = {}
    for rev in study["revs"]:
        seed = committed(project, rev, "params.yaml")["seed"]
        for name in ("gen0", "control"):
            expected[("all", seed, name)] = committed(project, rev, f"metrics/{name}.json")["test_error"]
    found = {(row.variant, row.seed, row.name): row.test_error for row in frame.itertuples()}
    assert found == pytest.approx(expected)
    assert sorted(seed for _, seed, _ in expected) == [0, 0, 1, 1]
    assert list(frame.loc[frame["name"] == "control", "kind"]) == ["control", "control"]


@pytest.mark.slow
def test_aggregate_pairs_networks_of_the_same_seed(study: dict[str, Any]) -> None:
    out = study["project"] / "reports/study"
    runs = pd.read_csv(out / "runs.csv").set_index(["variant", "name", "seed"])["test_error"]
    differences = pd.read_csv(out / "differences.csv").set_index(["variant", "name", "reference"])
    control, teacher = ([runs[("all", name, seed)] for seed in (0, 1)] for name in ("control", "gen0"))
    row = differences.loc[("all", "control", "gen0")]
    per_seed = [c - t for c, t in zip(control, teacher, strict=True)]
    assert (row["n"], row["mean"], row["role"]) == (2, pytest.approx(statistics.mean(per_seed)), "gen0")
    assert row["sd"] == pytest.approx(statistics.stdev(per_seed))
    assert row["t_test_p"] == pytest.approx(stats.ttest_rel(control, teacher).pvalue)
    lines = (out / "study.md").read_text().splitlines()
    variant_table_row = [x for x in lines if x.startswith("| control |")][-1]  # after the side-by-side table
    assert f"| {row['mean']:.2f} ± {row['sd']:.2f} (" in variant_table_row


@pytest.mark.slow
def test_a_student_with_kd_mode_none_trains_without_its_teacher(study: dict[str, Any]) -> None:
    """The chain's kd.mode is ban; the control's own ``kd: {mode: none}`` makes it a label-only run."""
    project, rev = study["project"], study["revs"][0]
    assert committed(project, rev, "params.yaml")["kd"]["mode"] == "ban"
    # dvclive's summary is a DVC-cached output: read it from the experiment through DVC, not git.
    control = json.loads(dvc.api.read("dvclive/control/metrics.json", repo=str(project), rev=rev))
    assert "analysis" not in control and set(control["train"]) == {"loss", "error", "loss_label"}


def shown(rev: str, *experiments: tuple[str, int, str]) -> dict[str, Any]:
    """A baseline of ``dvc exp show --json`` with experiments (name, seed, executor state) of ``CHAIN``
    (gen0, gen1 and a control) whose networks have test error 10 + seed."""
    def experiment(name: str, seed: int, state: str) -> dict[str, Any]:
        run = chain_run(name, seed)
        metrics = {path: {"data": values} for path, values in run.metrics.items()}
        data = {"timestamp": f"2026-01-0{seed + 1}", "params": {"params.yaml": {"data": run.params}},
                "metrics": metrics}
        return {"name": name, "executor": {"state": state}, "revs": [{"rev": f"{rev}{seed}", "data": data}]}
    return {"rev": rev, "data": {}, "experiments": [experiment(*entry) for entry in experiments]}


def test_a_record_gains_each_launchs_finished_experiments_as_they_land(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    """Two sessions of one study on two commits: the record keeps the first's experiments, takes the
    second's finished ones (a rerun replacing its earlier record), and the aggregate reads it whole."""
    record, out = tmp_path / "reports/record.json", tmp_path / "study"
    first = [shown("aaa", ("c-01-seed_0", 0, "success"), ("c-02-seed_1", 1, "running"),
                   ("other-01", 2, "success"))]
    second = [shown("aaa", ("c-01-seed_0", 0, "success")),
              shown("bbb", ("c-01-seed_1", 1, "success"), ("c-02-seed_2", 2, "failed"))]
    for show in (first, second):
        (tmp_path / "show.json").write_text(json.dumps(show))
        aggregate.main(["--json", str(tmp_path / "show.json"), "--name", "c", "--record", str(record),
                        "--out", str(out)])
    saved = json.loads(record.read_text())
    assert [(b["rev"], [e["name"] for e in b["experiments"]]) for b in saved] == [
        ("aaa", ["c-01-seed_0"]), ("bbb", ["c-01-seed_1"])]
    logged = capsys.readouterr().err.splitlines()
    assert f"{record}: 1 experiments, 1 new: c-01-seed_0" in logged
    assert f"{record}: 2 experiments, 1 new: c-01-seed_1" in logged
    frame = pd.read_csv(out / "runs.csv")
    assert sorted(zip(frame["seed"], frame["name"], frame["test_error"], strict=True)) == [
        (0, "control", 10.0), (0, "gen0", 10.0), (0, "gen1", 10.0),
        (1, "control", 11.0), (1, "gen0", 11.0), (1, "gen1", 11.0)]


def test_a_record_needs_the_launchs_name_and_refuses_a_file_that_is_not_one(tmp_path: Path) -> None:
    show = tmp_path / "show.json"
    show.write_text(json.dumps([shown("aaa", ("c-01-seed_0", 0, "success"))]))
    with pytest.raises(ConfigError, match="--record keeps the experiments of one launch: give its --name"):
        aggregate.main(["--json", str(show), "--record", str(tmp_path / "record.json")])
    (tmp_path / "record.json").write_text('{"rev": "aaa"}')
    with pytest.raises(BanError, match="record.json: not a study record .* a list of baselines expected"):
        aggregate.main(["--json", str(show), "--name", "c", "--record", str(tmp_path / "record.json")])
    assert (tmp_path / "record.json").read_text() == '{"rev": "aaa"}'

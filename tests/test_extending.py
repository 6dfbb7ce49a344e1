"""Edit the code, keep the training; add an extension in one place.

In a real git + DVC repository after a ``dvc repro``: edits to reporting, studies, the gate, presets,
benchmarks, tests and the README leave every train stage up to date; an edit to the ensemble code
re-runs only ``ensemble`` and ``evaluate``; an edit to a module the params do not select (another
objective, another network) re-runs nothing, one to the selected objective re-runs the students that use
it; and an objective added as one module of ``ban/objectives/`` runs a chain through ``params.yaml`` alone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from project import FAST, ROOT, Reproduced, merge, run, stages_run, write_params

from ban.training.closure import module_files

pytestmark = pytest.mark.slow  # real pipelines: processes, DVC, git

TRAIN_STAGES = ("teacher", "student@gen1", "student@gen2")


@pytest.fixture(scope="module")
def project(reproduced_chain: Reproduced, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reproduced_chain.copy(tmp_path_factory.mktemp("edits") / "project")


def changed_stages(project: Path) -> set[str]:
    """The stages ``dvc status`` reports as changed (``dvc.yaml:`` prefixes dropped), after ``validate``
    (which runs on every repro, so is always reported) has recorded the code each stage selects."""
    run(project, "dvc", "repro", "validate")
    status = json.loads(run(project, "dvc", "status", "--json").stdout)
    return {name.split(":")[-1] for name, changes in status.items() if changes != ["always changed"]}


def append_comment(project: Path, path: str) -> None:
    with open(project / path, "a") as file:
        file.write("\n# an edit\n" if path.endswith((".py", ".yaml", ".sh")) else "\nAn edit.\n")


def test_edits_outside_training_leave_every_train_stage_up_to_date(project: Path) -> None:
    edited = ["ban_pipeline/reporting/results.py", "ban_pipeline/reporting/study.py",
              "ban_pipeline/reporting/gate.py", "presets/study-digits.yaml", "bench/train_speed.py",
              "tests/test_gate.py", "README.md"]
    for path in edited:
        append_comment(project, path)
    assert changed_stages(project) == {"evaluate"}  # it draws the tables and figures of results.py
    assert stages_run(run(project, "dvc", "repro").stdout) == ["evaluate"]
    run(project, "git", "checkout", "--", ".")
    run(project, "dvc", "checkout", "-q")


def test_an_edit_to_the_ensemble_code_reruns_only_ensemble_and_evaluate(project: Path) -> None:
    source = project / "ban/ensemble.py"
    original = source.read_text()
    reordered = original.replace("EnsemblePredictions(members[:size])",
                                 "EnsemblePredictions(members[size - 1::-1])")
    assert reordered != original
    source.write_text(reordered)  # lists each ensemble's members newest first
    assert changed_stages(project) == {"ensemble"}
    assert stages_run(run(project, "dvc", "repro").stdout) == ["ensemble", "evaluate"]
    assert "gen2+gen1" in (project / "reports/results.md").read_text()
    run(project, "git", "checkout", "--", ".")
    run(project, "dvc", "checkout", "-q")


def test_a_stage_depends_on_the_objective_its_params_select_and_on_no_other(project: Path) -> None:
    """``kd.mode: ban``: an edit to DKPP's module re-runs nothing; one to BAN's re-runs every student."""
    for path in ("ban/objectives/dkpp.py", "ban/objectives/cwtm.py", "ban/nets/wrn.py"):
        with open(project / path, "a") as file:
            file.write("\n\ndef unused() -> None:\n    pass\n")
    assert changed_stages(project) == set()
    with open(project / "ban/objectives/ban.py", "a") as file:
        file.write("\n\ndef unused() -> None:\n    pass\n")
    assert changed_stages(project) == {"student@gen1", "student@gen2"}
    run(project, "git", "checkout", "--", ".")
    run(project, "dvc", "checkout", "-q")


def test_an_objective_added_as_one_module_runs_a_chain_through_params(project: Path, tmp_path: Path) -> None:
    added = project / "ban/objectives/halfway.py"
    shutil.copy(ROOT / "tests/extension_objective.py", added)
    # no stage imports it until params select it: then the code record of the student that uses it names it
    assert str(added.relative_to(project)) not in {str(p) for p in module_files("stages.train", project)}
    one_student = {"students": {"gen1": {"teacher": "gen0"}}}
    write_params(project, merge(FAST, {"kd": {"mode": "halfway"}, **one_student}))
    result = run(project, "dvc", "repro")
    assert stages_run(result.stdout) == ["student@gen1", "ensemble", "evaluate"]  # the teacher stays
    assert "ban/objectives/halfway.py" in json.loads((project / "code/gen1.json").read_text())["files"]
    history = torch.load(project / "preds/gen1.pt", weights_only=True)["history"]
    assert "train/loss_halfway" in history[-1] and "train/loss_kd" not in history[-1]
    changed = run(project, "git", "status", "--porcelain", "--", "ban", "stages", "dvc.yaml").stdout
    assert changed.splitlines() == ["?? ban/objectives/halfway.py"]
    write_params(project, merge(FAST, {"kd": {"mode": "halfwya"}, **one_student}))
    refused = run(project, "python", "-m", "stages.train", "gen1", check=False)
    assert refused.returncode == 2
    assert refused.stderr == ("error: kd.mode: unknown objective 'halfwya'; valid: ban, cwtm, dkpp, halfway, "
                              "none\n")

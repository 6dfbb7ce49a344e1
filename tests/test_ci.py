"""CI does what the README says: `.ci/run` runs the README's install and test commands in a new virtual
environment; the workflow lints, tests on every supported Python, and gates with the tolerance the README
states; its pull-request comment is skipped where the token cannot write (forks)."""

from __future__ import annotations

import re

import yaml
from project import ROOT

from ban_pipeline.reporting.gate import DEFAULT_TOLERANCE

WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
README = (ROOT / "README.md").read_text()
DOCS = "\n".join(path.read_text() for path in sorted((ROOT / "docs").glob("*.md")))
CI_RUN = (ROOT / ".ci" / "run").read_text()


def steps(job: str) -> list[dict]:
    return WORKFLOW["jobs"][job]["steps"]


def commands(job: str) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def test_ci_run_installs_and_tests_in_a_new_virtual_environment_as_the_readme_says() -> None:
    lines = [line for line in CI_RUN.splitlines() if line and not line.startswith("#")]
    assert lines.index("python3 -m venv .venv") < lines.index(". .venv/bin/activate")
    after = lines[lines.index(". .venv/bin/activate") + 1:]
    assert after == ["python -m pip install -r requirements.txt", "python -m pytest -q"]
    assert "python3 -m venv .venv && . .venv/bin/activate" in README
    assert "python -m pip install -r requirements.txt && python -m pytest -q" in README


def test_the_workflow_lints_and_tests_on_every_supported_python() -> None:
    assert "ruff check" in commands("lint")
    assert WORKFLOW["jobs"]["tests"]["strategy"]["matrix"]["python-version"] == ["3.11", "3.12"]
    assert "bash .ci/run" in commands("tests")


def test_the_pull_request_comment_is_skipped_for_forks_and_never_fails_the_build() -> None:
    [comment] = [step for step in steps("chain-and-gate") if "gh pr comment" in step.get("run", "")]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in comment["if"]
    assert comment["continue-on-error"] is True


def test_the_gate_runs_with_the_tolerance_the_readme_states() -> None:
    gate = commands("chain-and-gate")
    assert "python -m stages.gate" in gate
    stated = re.findall(r"--tolerance (\d+(?:\.\d+)?)", gate + README + DOCS) + re.findall(
        r"tolerance stays (\d+(?:\.\d+)?)", README + DOCS)
    assert stated and {float(value) for value in stated} == {DEFAULT_TOLERANCE}

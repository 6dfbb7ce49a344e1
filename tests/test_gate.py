"""The regression gate's verdicts and table: it fails on a regression, a non-finite headline metric
and a generation or ensemble that disappeared, and passes new ones and changes within tolerance."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from project import ROOT

from ban.core.errors import ConfigError
from ban_pipeline.reporting.gate import compare, markdown, parse_summary


def verdicts(before: dict, after: dict, tolerance: float = 0.5) -> dict[tuple[str, str], str]:
    return {(c.name, c.metric): c.verdict(tolerance) for c in compare(before, after)}


def test_only_increases_beyond_tolerance_regress() -> None:
    before = {"gen0": {"test_error": 5.0}, "gen1": {"test_error": 4.0}, "ens2": {"test_error": 3.0}}
    after = {"gen0": {"test_error": 5.4}, "gen1": {"test_error": 3.0}, "ens2": {"test_error": 3.6}}
    changes = {c.name: c for c in compare(before, after)}
    assert [name for name, c in changes.items() if c.fails(0.5)] == ["ens2"]
    assert changes["gen1"].delta == -1.0 and changes["gen0"].verdict(0.5) == "ok"
    assert changes["ens2"].reason(0.5) == "ens2 test_error +0.60 (beyond the tolerance 0.5)"


def test_a_new_generation_passes_and_a_vanished_one_fails() -> None:
    changes = compare({"gen3": {"test_error": 2.0}}, {"gen4": {"test_perplexity": 80.0}})
    assert [(c.name, c.before, c.after) for c in changes] == [("gen4", None, 80.0), ("gen3", 2.0, None)]
    assert [c.fails(0.0) for c in changes] == [False, True]
    assert changes[1].reason(0.0) == "gen3 test_error is missing (was 2.00)"
    table = markdown(changes, "main", 0.5)
    assert "| gen4 | test_perplexity | - | 80.00 | - | new |" in table
    assert "| gen3 | test_error | 2.00 | - | - | missing |" in table


def test_a_headline_metric_that_is_no_longer_finite_fails() -> None:
    before = {"gen1": {"test_error": 2.0}, "gen2": {"test_perplexity": 80.0}, "ens2": {"test_error": 1.0}}
    after = {"gen1": {"test_error": math.nan}, "gen2": {"test_perplexity": math.inf},
             "ens2": {"test_error": None}}
    assert verdicts(before, after) == {("gen1", "test_error"): "not finite", ("gen2", "test_perplexity"):
                                       "not finite", ("ens2", "test_error"): "not finite"}
    reasons = [c.reason(0.5) for c in compare(before, after)]
    assert reasons == ["gen1 test_error is nan (was 2.00)", "gen2 test_perplexity is inf (was 80.00)",
                       "ens2 test_error is nan (was 1.00)"]


def test_a_metric_missing_from_a_generation_that_remains_fails() -> None:
    assert verdicts({"gen1": {"test_error": 2.0}}, {"gen1": {"test_nll": 0.1}}) == \
        {("gen1", "test_error"): "missing"}


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "expected an object of generations and ensembles, not an array"),
    ('{"gen1": 3.5}', "'gen1' should be an object of metrics, not a number"),
    ('{"gen1": [2.0]}', "'gen1' should be an object of metrics, not an array"),
    ('{"gen1": {"test_error": 2.0}', "not valid JSON"),
])
def test_a_summary_that_is_not_generations_of_metrics_is_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"summary.json: {message}")):
        parse_summary(text, "summary.json")


def gate(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stages.gate", *arguments], cwd=ROOT, capture_output=True,
                          text=True)


@pytest.mark.parametrize("tolerance", ["nan", "-0.5", "inf"])
def test_the_command_refuses_a_tolerance_that_cannot_decide(tolerance: str) -> None:
    """``worse > nan`` is false: a NaN tolerance would pass every regression."""
    result = gate("--tolerance", tolerance)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: --tolerance: must be a finite number >= 0, not {tolerance}\n"


def test_the_command_refuses_a_malformed_metrics_file(tmp_path: Path) -> None:
    metrics = tmp_path / "summary.json"
    metrics.write_text('{"gen0": {"test_error": 2.0}, "ens2": 1.1}')
    result = gate("--metrics", str(metrics))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: {metrics}: 'ens2' should be an object of metrics, not a number\n"

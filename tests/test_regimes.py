"""``stages.regimes``: students' gains over their teachers against the teachers' true-class probability,
read from studies that ``stages.aggregate`` wrote from saved ``dvc exp show --json`` records."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from ban.core.errors import ConfigError
from stages import aggregate, regimes

CHAIN = {"train": {"epochs": 1}, "students": {"gen1": {"teacher": "gen0"}, "gen2": {"teacher": "gen1"},
                                              "control": {"teacher": "gen0", "kd": {"mode": "none"}}}}
TEACHER_PROB = {0: 0.9, 1: 0.8, 2: 0.6}  # gen1's record of gen0, by seed; gen2's record of gen1 is absent


def experiment(seed: int) -> dict[str, Any]:
    """A finished experiment of ``CHAIN``: gen0 at 10 + seed % error, gen1 a point better in seeds 0 and 1
    and two points in seed 2, gen2 as gen1."""
    gen1 = 9.0 + seed - (seed == 2)
    errors = {"gen0": 10.0 + seed, "gen1": gen1, "gen2": gen1, "control": 10.5 + seed}
    metrics = {f"metrics/{name}.json": {"data": {"test_error": error, "train_error": 1.0 + seed}}
               for name, error in errors.items()}
    metrics["metrics/gen1.json"]["data"]["teacher_true_prob"] = TEACHER_PROB[seed]
    metrics["metrics/ensemble.json"] = {"data": {}}
    data = {"timestamp": f"2026-01-0{seed + 1}", "params": {"params.yaml": {"data": {"seed": seed, **CHAIN}}},
            "metrics": metrics}
    return {"name": f"s-01-seed_{seed}", "revs": [{"rev": f"abc{seed}", "data": data}]}


@pytest.fixture
def study(tmp_path: Path) -> Path:
    show = tmp_path / "show.json"
    show.write_text(json.dumps([{"rev": "abc", "experiments": [experiment(seed) for seed in range(3)]}]))
    aggregate.main(["--json", str(show), "--out", str(tmp_path / "study")])
    return tmp_path / "study"


def write_regimes(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"regimes": entries}))
    return path


def test_each_student_meets_its_own_teacher_whose_probability_is_measured_or_marked_not_recorded(
        study: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    entries = [{"label": "measured", "study": str(study), "variant": "all"},
               {"label": "again", "study": str(study), "variant": "all"},
               {"label": "not yet run", "study": str(tmp_path / "missing"), "variant": "all"}]
    out = tmp_path / "out"
    regimes.main(["--file", str(write_regimes(tmp_path / "regimes.yaml", entries)), "--out", str(out)])
    points = pd.read_csv(out / "regimes.csv").set_index(["regime", "student"])
    assert sorted(points.index) == [("again", "gen1"), ("again", "gen2"), ("measured", "gen1"),
                                    ("measured", "gen2")]
    gen1 = points.loc[("measured", "gen1")]
    gains = [1.0, 1.0, 2.0]
    assert (gen1["teacher"], gen1["seeds"], gen1["teacher_true_prob_seeds"]) == ("gen0", 3, 3)
    assert gen1["teacher_true_prob"] == pytest.approx(statistics.mean(TEACHER_PROB.values()))
    assert gen1["teacher_true_prob_sd"] == pytest.approx(statistics.stdev(TEACHER_PROB.values()))
    assert gen1["gain"] == pytest.approx(statistics.mean(gains))
    assert gen1["gain_sd"] == pytest.approx(statistics.stdev(gains))
    assert gen1["teacher_train_error"] == pytest.approx(2.0)  # gen0's, mean over seeds 1, 2, 3
    gen2 = points.loc[("measured", "gen2")]  # its teacher gen1's probability: in no student's metrics
    assert (gen2["teacher"], gen2["teacher_true_prob_seeds"], gen2["gain"]) == ("gen1", 0, 0.0)
    text = (out / "regimes.md").read_text()
    # t = 1.33 / (0.58 / sqrt 3) = 4.0 with 2 degrees of freedom: p = 0.0572; the table holds it twice
    # (gen2's test is undefined), so Holm gives both 2 * 0.0572
    assert "| measured | gen1 (gen0) | 2.00 | 0.767 ± 0.153 (3) | 1.33 ± 0.58 (0.057, 0.114) | 3 |" in text
    assert "| measured | gen2 (gen1) | 2.00 | not recorded | 0.00 ± 0.00 (-, -) | 3 |" in text
    assert (out / "regimes.png").read_bytes()[:4] == b"\x89PNG"
    assert f"warning: {tmp_path / 'missing'} is not aggregated yet (no runs.csv): not yet run left out" in \
        capsys.readouterr().err


@pytest.mark.parametrize(("text", "error"), [
    ("regimes: [{label: a, study: s, varient: all}]",
     "regimes.yaml: regimes[0].varient: unknown key (did you mean 'variant'?)"),
    ("regimes: [{label: a, study: s, variant: all, teacher_true_prob: {gen0: 0.9}}]",
     "regimes.yaml: regimes[0].teacher_true_prob: unknown key; known keys: label, study, variant"),
    ("regimes: [{label: a}]", "regimes.yaml: regimes[0].study: required key is missing"),
    ("[1, 2]", "regimes.yaml: expected a mapping, got list"),
    ("regimes: {", "regimes.yaml: YAML syntax error"),
])
def test_a_malformed_regimes_file_is_one_line_naming_the_nearest_key(tmp_path: Path, text: str,
                                                                      error: str) -> None:
    path = tmp_path / "regimes.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        regimes.main(["--file", str(path), "--out", str(tmp_path / "out")])
    assert str(refused.value).startswith(f"{tmp_path}/{error}")
    assert not (tmp_path / "out").exists()

"""Holm's correction, by hand, and its families: the comparisons of one study table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ban_pipeline.reporting.comparisons import differences
from ban_pipeline.reporting.experiments import finished_experiments
from ban_pipeline.reporting.significance import holm
from ban_pipeline.reporting.study_frame import study_frame

CROPS = Path("reports/studies/cifar10-32-crops")


def test_holm_multiplies_the_kth_smallest_by_m_minus_k_plus_1_and_keeps_the_order() -> None:
    # sorted: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 = 0.04 -> raised to 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_gives_tied_p_values_one_adjusted_value() -> None:
    # 0.02 * 3 = 0.06, then 0.02 * 2 = 0.04 raised to 0.06 (the step down never lowers), 0.5 * 1 = 0.5
    assert holm([0.02, 0.5, 0.02]) == pytest.approx([0.06, 0.5, 0.06])


def test_holm_caps_at_one_and_leaves_undefined_tests_out_of_the_family() -> None:
    assert holm([0.6, 0.7, 0.9]) == [1.0, 1.0, 1.0]
    adjusted = holm([math.nan, 0.04, 0.01])  # m = 2: 0.01 * 2 = 0.02, 0.04 * 1 = 0.04
    assert math.isnan(adjusted[0]) and adjusted[1:] == pytest.approx([0.04, 0.02])
    assert holm([0.03]) == [0.03] and holm([]) == []


def test_each_study_table_is_one_family() -> None:
    """The crops study's table holds 15 comparisons; its Holm-adjusted p-values are Holm's over them.
    BAN-2 against the control (p 0.0303) is the 12th smallest t-test p of the 15, and no smaller p has
    a larger adjusted value, so its adjusted p is (15 - 12 + 1) * 0.0303 = 0.121."""
    experiments, _ = finished_experiments(json.loads((CROPS / "experiments.json").read_text()))
    paired = differences(study_frame(experiments)[0], "test_error")
    assert len(paired) == 15 and set(paired["variant"]) == {"all"}
    for column in ("t_test_p", "wilcoxon_p"):
        assert list(paired[f"{column}_holm"]) == holm(list(paired[column]))
    gen2 = paired[(paired["name"] == "gen2") & (paired["reference"] == "control")].iloc[0]
    assert sorted(paired["t_test_p"]).index(gen2["t_test_p"]) == 11
    assert gen2["t_test_p_holm"] == pytest.approx(4 * gen2["t_test_p"])
    assert (round(gen2["t_test_p"], 3), round(gen2["t_test_p_holm"], 3)) == (0.030, 0.121)

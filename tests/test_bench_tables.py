"""The benchmarks' tables say what they compare: precisions and threads of each way, per-token ratios."""

from __future__ import annotations

import pytest

from bench import lm_speed, train_speed


def image_runs(default: str) -> list[dict]:
    """One run per way and precision, as the child processes of ``bench.train_speed`` report them."""
    runs = [
        ("ours/ce", "fp32", 12.0),
        ("ours/ban", "fp32", 10.0),
        ("ours/ce", "bf16", 24.0),
        ("ours/ban", "bf16", 16.0),
        ("ordinary/ce", "fp32", 9.0),
        ("ordinary/ban", "fp32", 8.0),
    ]
    return [
        {
            "model": "resnet20",
            "way": way,
            "precision": precision,
            "img_per_s": speed,
            "peak_mb": 1000.0,
            "params": 1,
            "threads": 1,
            "workers": 2,
            "default_precision": default,
        }
        for way, precision, speed in runs
    ]


@pytest.mark.parametrize(
    ("default", "labels"),
    [
        ("bf16", {"bf16": "each one's default", "fp32": "same precision"}),
        ("fp32", {"bf16": "ours at bf16", "fp32": "same precision, both defaults"}),
    ],
)
def test_ours_against_the_ordinary_loop_at_each_default_and_at_the_same_precision(default, labels):
    rows = {row["ours precision"]: row for row in train_speed.summarise(image_runs(default))}
    assert {precision: row["compared at"] for precision, row in rows.items()} == labels
    assert rows["fp32"]["ours/ordinary ce"] == pytest.approx(12 / 9)
    assert rows["bf16"]["ours/ordinary ban"] == pytest.approx(16 / 8)
    assert (rows["fp32"]["ours threads"], rows["fp32"]["ordinary threads"]) == ("1", "1 + 2 loader workers")


def test_language_model_ratios_are_per_token_from_wall_and_cpu_time():
    runs = [
        {
            "arch": "lstm",
            "precision": "fp32",
            "params": 1,
            "batch_size": 20,
            "threads": 1,
            "device": "cpu",
            "kind": kind,
            "tok_per_s": speed,
            "cpu_s_per_ktok": cpu,
        }
        for speed_plain, speed_distill, cpu_plain, cpu_distill in [
            (1000, 700, 0.5, 0.7),
            (900, 600, 0.5, 0.65),
        ]
        for kind, speed, cpu in [("plain", speed_plain, cpu_plain), ("distill", speed_distill, cpu_distill)]
    ]
    row = lm_speed.summarise(runs)
    assert row["distill/plain time"] == pytest.approx((1000 / 700 + 900 / 600) / 2)
    assert row["distill/plain cpu time"] == pytest.approx((1.4 + 1.3) / 2)
    assert row["runs"] == "1.43, 1.50"

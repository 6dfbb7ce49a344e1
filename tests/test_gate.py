"""The regression gate's verdicts and table."""

from __future__ import annotations

from ban.gate import compare, markdown


def test_compare_flags_only_increases_beyond_tolerance() -> None:
    before = {"gen0": {"test_error": 5.0}, "gen1": {"test_error": 4.0}, "ens2": {"test_error": 3.0}}
    after = {"gen0": {"test_error": 5.4}, "gen1": {"test_error": 3.0}, "ens2": {"test_error": 3.6}}
    changes = {c.name: c for c in compare(before, after)}
    assert [name for name, c in changes.items() if c.regressed(0.5)] == ["ens2"]
    assert changes["gen1"].delta == -1.0


def test_new_and_removed_rows_are_reported_not_failed() -> None:
    changes = compare({"gen3": {"test_error": 2.0}}, {"gen4": {"test_perplexity": 80.0}})
    assert [(c.name, c.before, c.after) for c in changes] == [("gen4", None, 80.0), ("gen3", 2.0, None)]
    assert not any(c.regressed(0.0) for c in changes)
    table = markdown(changes, "main", 0.5)
    assert "| gen4 | test_perplexity | - | 80.00 | - | new |" in table
    assert "| gen3 | test_error | 2.00 | - | - | removed |" in table

"""Compare a run's headline metrics with another revision's and decide whether it regressed.

``dvc metrics diff`` shows changes but always exits 0; CI needs a verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HEADLINE = ("test_error", "test_perplexity")  # lower is better for both


@dataclass
class Change:
    name: str
    metric: str
    before: float | None
    after: float | None

    @property
    def delta(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before

    def regressed(self, tolerance: float) -> bool:
        return self.delta is not None and self.delta > tolerance


def compare(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> list[Change]:
    """One change per generation/ensemble and headline metric present on either side."""
    changes = []
    for name in list(after) + [n for n in before if n not in after]:
        for metric in HEADLINE:
            old, new = before.get(name, {}).get(metric), after.get(name, {}).get(metric)
            if _number(old) is not None or _number(new) is not None:
                changes.append(Change(name, metric, _number(old), _number(new)))
    return changes


def markdown(changes: list[Change], revision: str, tolerance: float) -> str:
    lines = [f"| name | metric | {revision} | current | change | verdict (tolerance {tolerance:g}) |",
             "|---|---|---:|---:|---:|---|"]
    for change in changes:
        verdict = "regressed" if change.regressed(tolerance) else (
            "new" if change.before is None else "removed" if change.after is None else "ok")
        lines.append(f"| {change.name} | {change.metric} | {_show(change.before)} | {_show(change.after)} | "
                     f"{_show(change.delta, signed=True)} | {verdict} |")
    return "\n".join(lines)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _show(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}" if signed else f"{value:.2f}"

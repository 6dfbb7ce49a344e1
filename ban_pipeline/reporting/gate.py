"""Compare a run's headline metrics with another revision's and decide whether it regressed.

``dvc metrics diff`` shows changes but always exits 0; CI needs a verdict. The gate fails closed:
besides a metric that got worse by more than the tolerance, a headline metric that is no longer a
finite number, and a generation or ensemble that disappeared, fail it too.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import StrEnum

from ban.core.errors import ConfigError
from ban.tasks import headline_metrics


class Verdict(StrEnum):
    """What happened to one headline metric; the first three fail the gate."""

    REGRESSED = "regressed"
    NOT_FINITE = "not finite"
    MISSING = "missing"
    OK = "ok"
    NEW = "new"  # no finite value at the revision
    REMOVED = "removed"  # absent now, and had no finite value before


# The increase in test error (points) or perplexity that passes: on digits, the CI's chain, one test image
# is 0.22 points, and a few are within the noise of a change of code. README and CI use this default.
DEFAULT_TOLERANCE = 1.0

FAILING = (Verdict.REGRESSED, Verdict.NOT_FINITE, Verdict.MISSING)


@dataclass
class Change:
    name: str
    metric: str
    before: float | None  # None: absent at the revision
    after: float | None  # None: absent now; NaN and infinities are kept as they are
    lower_is_better: bool = True

    @property
    def delta(self) -> float | None:
        if not _finite(self.before) or not _finite(self.after):
            return None
        return self.after - self.before

    def verdict(self, tolerance: float) -> Verdict:
        if self.after is None:
            return Verdict.MISSING if _finite(self.before) else Verdict.REMOVED
        if not _finite(self.after):
            return Verdict.NOT_FINITE
        if not _finite(self.before):
            return Verdict.NEW
        worse = self.delta if self.lower_is_better else -self.delta
        return Verdict.REGRESSED if worse > tolerance else Verdict.OK

    def fails(self, tolerance: float) -> bool:
        return self.verdict(tolerance) in FAILING

    def reason(self, tolerance: float) -> str:
        """One line saying why this change fails the gate."""
        verdict = self.verdict(tolerance)
        if verdict == Verdict.REGRESSED:
            return f"{self.name} {self.metric} {self.delta:+.2f} (beyond the tolerance {tolerance:g})"
        if verdict == Verdict.NOT_FINITE:
            return f"{self.name} {self.metric} is {self.after} (was {_show(self.before)})"
        return f"{self.name} {self.metric} is missing (was {_show(self.before)})"


def check_tolerance(tolerance: float) -> float:
    """A tolerance the comparison can use: NaN would pass every regression (``worse > nan`` is false)."""
    if not math.isfinite(tolerance) or tolerance < 0:
        raise ConfigError(f"--tolerance: must be a finite number >= 0, not {tolerance:g}")
    return tolerance


def parse_summary(text: str, source: str) -> dict[str, dict[str, object]]:
    """A metrics summary (``{name: {metric: value}}``) read from ``source``; anything else is refused,
    since a gate that cannot read a side must not pass."""
    try:
        summary = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{source}: not valid JSON ({error})") from None
    if not isinstance(summary, dict):
        raise ConfigError(f"{source}: expected an object of generations and ensembles, not {_kind(summary)}")
    for name, record in summary.items():
        if not isinstance(record, dict):
            raise ConfigError(f"{source}: {name!r} should be an object of metrics, not {_kind(record)}")
    return summary


def _kind(value: object) -> str:
    """How JSON names a value's type."""
    kinds = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def compare(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> list[Change]:
    """One change per generation/ensemble and headline metric present on either side."""
    changes = []
    for name in list(after) + [n for n in before if n not in after]:
        for metric, lower_is_better in headline_metrics().items():
            old, new = _value(before.get(name, {}), metric), _value(after.get(name, {}), metric)
            if old is not None or new is not None:
                changes.append(Change(name, metric, old, new, lower_is_better))
    return changes


def markdown(changes: list[Change], revision: str, tolerance: float) -> str:
    lines = [f"| name | metric | {revision} | current | change | verdict (tolerance {tolerance:g}) |",
             "|---|---|---:|---:|---:|---|"]
    for change in changes:
        lines.append(f"| {change.name} | {change.metric} | {_show(change.before)} | {_show(change.after)} | "
                     f"{_show(change.delta, signed=True)} | {change.verdict(tolerance)} |")
    return "\n".join(lines)


def _value(metrics: dict[str, object], metric: str) -> float | None:
    """The metric as a float; a non-numeric value counts as NaN (not a usable number), absence as None."""
    if metric not in metrics:
        return None
    value = metrics[metric]
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _show(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    return f"{value:+.2f}" if signed else f"{value:.2f}"

"""Paired tests of two networks over seeds, and Holm's correction for the many comparisons of one table."""

from __future__ import annotations

import math
import warnings

from scipy import stats


def paired_tests(a: list[float], b: list[float]) -> tuple[float, float]:
    """Two-sided p-values of the paired t-test and of the Wilcoxon signed-rank test (exact for small n).

    NaN where a test is undefined: fewer than two pairs, or no difference at all.
    """
    differences = [x - y for x, y in zip(a, b, strict=True)]
    if len(differences) < 2 or all(d == 0 for d in differences):
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant non-zero differences: t is infinite
        t_test = float(stats.ttest_rel(a, b).pvalue)
        wilcoxon = float(stats.wilcoxon(differences).pvalue)
    return t_test, wilcoxon


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment (Holm 1979), in the order given: the k-th smallest of m p-values
    times m - k + 1, never below the adjusted value of a smaller p (the monotonicity step), at most 1.
    NaN p-values (tests that could not be made) stay NaN and do not count in m."""
    order = sorted((index for index, p in enumerate(p_values) if not math.isnan(p)),
                   key=lambda index: p_values[index])
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def p_value(value: float) -> str:
    """A p-value as the tables print it: three decimals, ``<0.001`` below, ``-`` where undefined."""
    if math.isnan(value):
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"

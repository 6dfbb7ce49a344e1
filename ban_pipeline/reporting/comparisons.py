"""A study's paired comparisons: which networks are compared with which, seed by seed, and how far apart.

Within a variant, the networks of one seed are paired, so a student is compared with its teacher and
with the control of the same seed (the control is any student whose kd mode is ``none``). Between
variants, a network is compared with the network of the same name in the first variant, again seed by
seed. Each table's comparisons form one family for Holm's correction.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pandas as pd

from ban.core.config import TEACHER
from ban_pipeline.reporting.results import Kind
from ban_pipeline.reporting.significance import holm, paired_tests

P_VALUES = ("t_test_p", "wilcoxon_p")  # each gets a Holm-adjusted column beside it, ``<name>_holm``


class Role(StrEnum):
    """What a comparison's reference is to the network compared."""

    GEN0 = "gen0"  # the chain's first teacher
    TEACHER = "teacher"  # the network's own teacher
    CONTROL = "control"  # a control of the same network
    VARIANT = "variant"  # the same network in the first variant


@dataclass(frozen=True)
class Comparison:
    """``name`` of ``variant`` minus ``reference`` of ``reference_variant``, paired by seed.

    ``role`` says what the reference is: ``gen0`` (the first teacher), ``teacher`` (the network's own
    teacher, when it is not gen0), ``control`` (the same network trained without a teacher) or
    ``variant`` (the same network in the first variant).
    """

    variant: str
    name: str
    reference_variant: str
    reference: str
    role: Role


ROLES = (Role.GEN0, Role.TEACHER, Role.CONTROL)  # the comparisons within a variant, in table order


def comparisons(frame: pd.DataFrame) -> list[Comparison]:
    """Within each variant: every student and ensemble against gen0, its own teacher and each
    control of the same network (a control only against gen0); between variants: each network
    against the same network of the first variant."""
    found = []
    variants = list(dict.fromkeys(frame["variant"]))
    for variant in variants:
        chain = frame[frame["variant"] == variant].drop_duplicates("name")
        controls = chain[chain["kind"] == Kind.CONTROL]
        for row in chain[chain["kind"] != Kind.TEACHER].itertuples():
            found.append(Comparison(variant, row.name, variant, TEACHER, Role.GEN0))
            if row.teacher not in ("", TEACHER):
                found.append(Comparison(variant, row.name, variant, row.teacher, Role.TEACHER))
            if row.kind != Kind.CONTROL:
                found += [Comparison(variant, row.name, variant, control, Role.CONTROL)
                          for control in controls.loc[controls["network"] == row.network, "name"]]
        if variant != variants[0]:
            reference_names = set(frame.loc[frame["variant"] == variants[0], "name"])
            found += [Comparison(variant, name, variants[0], name, Role.VARIANT) for name in chain["name"]
                      if name in reference_names]
    return found


def paired_difference(frame: pd.DataFrame, comparison: Comparison, metric: str) -> dict[str, Any]:
    """The difference per seed, its mean and sd, and a paired t-test and a Wilcoxon signed-rank test."""
    a = _per_seed(frame, comparison.variant, comparison.name, metric)
    b = _per_seed(frame, comparison.reference_variant, comparison.reference, metric)
    pairs = pd.concat([a, b], axis=1, join="inner", keys=["a", "b"]).dropna()
    difference = pairs["a"] - pairs["b"]
    t_test, wilcoxon = paired_tests(list(pairs["a"]), list(pairs["b"]))
    return {"variant": comparison.variant, "name": comparison.name,
            "reference_variant": comparison.reference_variant, "reference": comparison.reference,
            "role": comparison.role, "n": len(difference), "mean": difference.mean(), "sd": difference.std(),
            "t_test_p": t_test, "wilcoxon_p": wilcoxon}


def _per_seed(frame: pd.DataFrame, variant: str, name: str, metric: str) -> pd.Series:
    rows = frame[(frame["variant"] == variant) & (frame["name"] == name)]
    return rows.set_index("seed")[metric] if metric in rows else pd.Series(dtype=float)


def differences(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Every comparison of :func:`comparisons` on ``metric``, each p-value with its Holm adjustment over
    the comparisons of its table (one table per variant, one for all the between-variant ones); empty
    when the metric is absent."""
    if metric not in frame:
        return pd.DataFrame()
    paired = pd.DataFrame([paired_difference(frame, c, metric) for c in comparisons(frame)])
    if not len(paired):
        return paired
    table = paired["variant"].where(paired["role"] != Role.VARIANT, "between variants")
    for column in P_VALUES:
        paired.insert(paired.columns.get_loc(column) + 1, f"{column}_holm", float("nan"))
        for _, family in paired.groupby(table, sort=False):
            paired.loc[family.index, f"{column}_holm"] = holm(list(family[column]))
    return paired

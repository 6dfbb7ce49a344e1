"""``python -m stages.regimes``: the teacher's regimes side by side, from committed studies.

Not a pipeline stage. Reads ``reports/studies/regimes.yaml`` (each regime: a study aggregated by
``stages.aggregate`` and one of its variants) and writes to ``--out``: ``regimes.md`` (per student: its
teacher's training error and mean probability of the true class on its training batches, and the
student's gain over that teacher, paired by seed), ``regimes.png`` (gain against that probability, a
colour per regime) and ``regimes.csv``. A study not aggregated yet is left out with a warning.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ban.core.errors import BanError
from ban_pipeline.reporting.regimes import load_regimes, plot_regimes, regime_points, regimes_markdown

REGIMES = Path("reports/studies/regimes.yaml")


def main(argv: list[str], prog: str = "python -m stages.regimes") -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--file", type=Path, default=REGIMES, help=f"the regimes (default: {REGIMES})")
    parser.add_argument("--out", type=Path, default=Path("reports/studies/regimes"),
                        help="output folder (default: reports/studies/regimes)")
    args = parser.parse_args(argv)
    tables = []
    for regime in load_regimes(args.file):
        if not (regime.study / "runs.csv").exists():
            print(f"warning: {regime.study} is not aggregated yet (no runs.csv): {regime.label} left out",
                  file=sys.stderr)
            continue
        tables.append(regime_points(regime))
    points = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if not len(points):
        raise BanError(f"{args.file}: no regime has a student whose teacher's true-class probability is "
                       "known")
    args.out.mkdir(parents=True, exist_ok=True)
    points.to_csv(args.out / "regimes.csv", index=False)
    plot_regimes(points, args.out / "regimes.png")
    text = regimes_markdown(points) + "\n"
    (args.out / "regimes.md").write_text(text)
    print(text, end="")

"""``python -m stages.regimes`` (``ban regimes``): the teacher's regimes side by side, from committed studies.

Not a pipeline stage. Reads ``reports/studies/regimes.yaml`` (each regime: a study aggregated by
``stages.aggregate`` and one of its variants) and writes to ``--out``: ``regimes.md`` (per student: its
teacher's training error and mean probability of the true class on its training batches, and the
student's gain over that teacher, paired by seed, with its t-test p and that p Holm-adjusted over the
table), ``regimes.png`` (gain against that probability, a colour per regime; students whose study did not
record the probability are left off) and ``regimes.csv``. A study not aggregated yet is left out with a
warning.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ban_pipeline.reporting.regimes import REGIMES, write_regimes


def main(argv: list[str], prog: str = "python -m stages.regimes") -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--file", type=Path, default=REGIMES, help=f"the regimes (default: {REGIMES})")
    parser.add_argument("--out", type=Path, default=Path("reports/studies/regimes"),
                        help="output folder (default: reports/studies/regimes)")
    args = parser.parse_args(argv)
    print(write_regimes(args.file, args.out), end="")

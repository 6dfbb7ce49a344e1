"""``python -m stages.regimes``: the teacher's regimes side by side, from committed studies.

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
import sys
from pathlib import Path

from ban.core.errors import BanError
from ban_pipeline.reporting.regimes import REGIMES, all_points, load_regimes, plot_regimes, regimes_markdown
from stages.cli import run


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.regimes", description=__doc__)
    parser.add_argument("--file", type=Path, default=REGIMES, help=f"the regimes (default: {REGIMES})")
    parser.add_argument("--out", type=Path, default=Path("reports/studies/regimes"),
                        help="output folder (default: reports/studies/regimes)")
    args = parser.parse_args(argv)
    aggregated = []
    for regime in load_regimes(args.file):
        if not (Path(regime.study) / "runs.csv").exists():
            print(f"warning: {regime.study} is not aggregated yet (no runs.csv): {regime.label} left out",
                  file=sys.stderr)
            continue
        aggregated.append(regime)
    points = all_points(aggregated) if aggregated else None
    if points is None or not len(points):
        raise BanError(f"{args.file}: no regime has a student compared with its own teacher")
    args.out.mkdir(parents=True, exist_ok=True)
    points.to_csv(args.out / "regimes.csv", index=False)
    plot_regimes(points, args.out / "regimes.png")
    text = regimes_markdown(points) + "\n"
    (args.out / "regimes.md").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    run(main)

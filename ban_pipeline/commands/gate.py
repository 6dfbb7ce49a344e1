"""Fail (exit 1) when any generation's or ensemble's headline metric got worse than at a git revision,
is no longer a finite number, or disappeared.

    python -m stages.gate --against main --tolerance 1.0
    python -m stages.gate --against main --tolerance 1.0 --reproduce

Compares metrics/summary.json in the workspace with the same file at the revision and prints a
markdown table of the differences (for CI logs and pull-request comments). With --reproduce the
revision's metrics are computed on this machine instead of read from git, where they may come from a
machine whose CPU gives other numbers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ban.core.errors import BanError
from ban.core.paths import SUMMARY
from ban_pipeline.processes import git
from ban_pipeline.reporting.baseline import reproduced_metrics
from ban_pipeline.reporting.gate import DEFAULT_TOLERANCE, check_tolerance, compare, markdown, parse_summary


def main(argv: list[str], prog: str = "python -m stages.gate") -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", default="HEAD", help="git revision to compare with (default: HEAD)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help="allowed increase in test error (points) or perplexity (default: %(default)s)")
    parser.add_argument("--metrics", default=str(SUMMARY), help=f"metrics file (default: {SUMMARY})")
    parser.add_argument("--reproduce", action="store_true",
                        help="compute the revision's metrics on this machine (dvc repro in a temporary "
                             "worktree sharing this DVC cache) instead of reading its committed ones")
    args = parser.parse_args(argv)
    check_tolerance(args.tolerance)
    try:
        after = parse_summary(Path(args.metrics).read_text(), args.metrics)
    except FileNotFoundError:
        raise BanError(f"{args.metrics} not found: run `dvc repro` first") from None
    if args.reproduce:
        before = parse_summary(reproduced_metrics(args.against, Path(args.metrics)),
                               f"{args.metrics} of {args.against}, reproduced")
    else:
        before = parse_summary(read_revision(args.against, args.metrics), f"{args.metrics} at {args.against}")
    changes = compare(before, after)
    print(markdown(changes, args.against, args.tolerance))
    failures = [change for change in changes if change.fails(args.tolerance)]
    for change in failures:
        print(f"gate failed: {change.reason(args.tolerance)}", file=sys.stderr)
    if failures:
        sys.exit(1)


def read_revision(revision: str, path: str) -> str:
    return git(None, "show", f"{revision}:{path}")

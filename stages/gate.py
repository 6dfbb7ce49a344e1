"""Fail (exit 1) when any generation's or ensemble's headline metric got worse than at a git revision,
is no longer a finite number, or disappeared.

    python -m stages.gate --against main --tolerance 0.5

Compares metrics/summary.json in the workspace with the same file at the revision
and prints a markdown table of the differences (for CI logs and pull-request comments).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from ban.core.errors import BanError, ConfigError
from ban.core.paths import SUMMARY
from ban.reporting.gate import compare, markdown
from stages.cli import run


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.gate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", default="HEAD", help="git revision to compare with (default: HEAD)")
    parser.add_argument("--tolerance", type=float, default=0.5,
                        help="allowed increase in test error (points) or perplexity (default: 0.5)")
    parser.add_argument("--metrics", default=str(SUMMARY), help=f"metrics file (default: {SUMMARY})")
    args = parser.parse_args(argv)
    if args.tolerance < 0:
        raise ConfigError("--tolerance: must be >= 0")
    before = json.loads(read_revision(args.against, args.metrics))
    try:
        with open(args.metrics) as file:
            after = json.load(file)
    except FileNotFoundError:
        raise BanError(f"{args.metrics} not found: run `dvc repro` first") from None
    changes = compare(before, after)
    print(markdown(changes, args.against, args.tolerance))
    failures = [change for change in changes if change.fails(args.tolerance)]
    for change in failures:
        print(f"gate failed: {change.reason(args.tolerance)}", file=sys.stderr)
    if failures:
        sys.exit(1)


def read_revision(revision: str, path: str) -> str:
    result = subprocess.run(["git", "show", f"{revision}:{path}"], capture_output=True, text=True)
    if result.returncode != 0:
        raise BanError(f"cannot read {path} at {revision!r}: {result.stderr.strip().splitlines()[-1]}")
    return result.stdout


if __name__ == "__main__":
    run(main)

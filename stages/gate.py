"""Fail (exit 1) when any generation's or ensemble's test error got worse than at a git revision.

    python -m stages.gate --against main --tolerance 0.5

Compares metrics/summary.json in the workspace with the same file at the revision
and prints a markdown table of the differences (for CI logs and pull-request comments).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from ban.errors import BanError, ConfigError
from ban.gate import compare, markdown
from ban.paths import SUMMARY
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
    regressions = [c for c in changes if c.regressed(args.tolerance)]
    if regressions:
        print(f"\n{len(regressions)} regression(s) beyond {args.tolerance:g}: "
              + ", ".join(f"{c.name} {c.metric} {c.delta:+.2f}" for c in regressions), file=sys.stderr)
        sys.exit(1)


def read_revision(revision: str, path: str) -> str:
    result = subprocess.run(["git", "show", f"{revision}:{path}"], capture_output=True, text=True)
    if result.returncode != 0:
        raise BanError(f"cannot read {path} at {revision!r}: {result.stderr.strip().splitlines()[-1]}")
    return result.stdout


if __name__ == "__main__":
    run(main)

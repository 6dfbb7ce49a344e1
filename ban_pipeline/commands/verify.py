"""``python -m stages.verify`` (``ban verify``): check committed studies against their saved experiments.

Re-aggregates each study record folder given (default: every committed study under reports/studies,
and the regimes) from its ``experiments.json``, compares its ``study.md`` and CSV files and every
generated block of README.md and docs/ that quotes it, prints what differs and exits 1 if anything
does (0 when all match). Nothing is trained. ``--write`` instead rewrites every generated block
(``<!-- BEGIN generated NAME -->`` ... ``<!-- END generated NAME -->``) from the records.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ban.core.errors import BanError
from ban_pipeline.reporting.verify import committed_records, verify_blocks, verify_folder, write_blocks


class FiguresDiffer(BanError):
    """Some published figure is not what its record gives (the differences are printed above)."""


def main(argv: list[str] | None = None, prog: str = "python -m stages.verify") -> int:
    """0 when every figure matches; raises FiguresDiffer (exit 1) when one does not."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", type=Path, metavar="FOLDER",
                        help="a study record folder (default: every committed study and the regimes)")
    parser.add_argument("--write", action="store_true",
                        help="rewrite every generated block of README.md and docs/ from the records")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.write:
        if args.folders:
            parser.error("--write rewrites every generated block: give no folder")
        changed = write_blocks(Path("."))
        print("\n".join(f"rewritten: {line}" for line in changed) or "every generated block is up to date")
        return 0
    folders = args.folders or committed_records()
    found = []
    for folder in folders:
        if not folder.is_dir():
            raise BanError(f"{folder}: no such folder")
        print(f"checking {folder}", file=sys.stderr)
        found += verify_folder(folder)
    found += verify_blocks(Path("."), args.folders or None)
    if found:
        print("\n".join(found))
        differing = sum(not line.startswith(" ") for line in found)
        raise FiguresDiffer(f"{differing} files or blocks differ from what their records give (above)")
    print(f"every figure matches its record ({len(folders)} checked)")
    return 0

"""A committed study checked against its saved experiments: every number of its ``study.md`` and CSV
files, and every generated block of the README and the docs that quotes it, re-made from the record
and compared character by character. Nothing is trained: the record holds every network's metrics."""

from __future__ import annotations

import difflib
from pathlib import Path

from ban_pipeline.reporting.generated import RECORD, STUDIES, generated_blocks, reaggregated, regimes_table
from ban_pipeline.reporting.markdown_blocks import blocks_in, markdown_files, with_bodies
from ban_pipeline.reporting.regimes import REGIMES, all_points, load_regimes
from ban_pipeline.reporting.study import TEXT_FILES

SHOWN_LINES = 12  # of each difference: enough to see it, not a flood


def committed_records() -> list[Path]:
    """Every committed study, then the regimes folder where it exists."""
    regimes = STUDIES / "regimes"
    studies = sorted(path.parent for path in STUDIES.glob(f"*/{RECORD}"))
    return studies + ([regimes] if regimes.is_dir() else [])


def difference(label: str, committed: str, made: str) -> list[str]:
    """The lines of ``committed`` that ``made`` (from the record) has otherwise, as a short diff."""
    if committed == made:
        return []
    lines = list(difflib.unified_diff(committed.splitlines(), made.splitlines(), "committed",
                                      "from the record", n=0, lineterm=""))
    shown = [f"  {line}" for line in lines[2:2 + SHOWN_LINES]]
    more = [f"  ... {len(lines) - 2 - SHOWN_LINES} more lines"] if len(lines) - 2 > SHOWN_LINES else []
    return [f"{label}: differs from what the record gives", *shown, *more]


def verify_folder(folder: Path) -> list[str]:
    """A study folder's text files (re-aggregated from its experiments), or the regimes folder's."""
    if (folder / RECORD).exists():
        made = reaggregated(folder).text_files()
        names: tuple[str, ...] = TEXT_FILES
    else:
        points = all_points(load_regimes(REGIMES))
        made = {"regimes.md": regimes_table(), "regimes.csv": points.to_csv(index=False)}
        names = tuple(made)
    found = []
    for name in names:
        path = folder / name
        committed = path.read_text() if path.exists() else ""
        found += difference(str(path), committed, made[name])
    return found


def verify_blocks(root: Path, folders: list[Path] | None = None) -> list[str]:
    """The generated blocks of the Markdown under ``root`` that quote one of ``folders`` (all: None)."""
    blocks = generated_blocks()
    wanted = None if folders is None else {folder.resolve() for folder in folders}
    found, seen = [], set()
    for path in markdown_files(root):
        for name, body in blocks_in(path.read_text()).items():
            seen.add(name)
            block = blocks.get(name)
            if block is None:
                found.append(f"{path}: block {name}: no generated figure has this name; known: "
                             f"{', '.join(blocks)}")
            elif wanted is None or wanted & {source.resolve() for source in block.sources}:
                found += difference(f"{path}: block {name}", body, block.render())
    if folders is None:
        found += [f"block {name}: in no Markdown file (README.md, docs/)" for name in blocks
                  if name not in seen]
    return found


def write_blocks(root: Path) -> list[str]:
    """Every generated block of the Markdown under ``root`` rewritten from the records; what changed."""
    blocks, changed = generated_blocks(), []
    for path in markdown_files(root):
        text = path.read_text()
        bodies = {name: blocks[name].render() for name in blocks_in(text) if name in blocks}
        written = with_bodies(text, bodies)
        if written != text:
            path.write_text(written)
            changed += [f"{path}: block {name}" for name, body in blocks_in(text).items()
                        if name in bodies and bodies[name] != body]
    return changed

"""Generated blocks in the project's Markdown: ``<!-- BEGIN generated NAME -->`` ... ``<!-- END generated
NAME -->``, found by name in README.md and every page under docs/, wherever a page puts them."""

from __future__ import annotations

import re
from pathlib import Path

BLOCK = re.compile(r"<!-- BEGIN generated (?P<name>[a-z0-9-]+) -->\n"
                   r"(?P<body>.*?)<!-- END generated (?P=name) -->", re.DOTALL)


def markdown_files(root: Path) -> list[Path]:
    """README.md and docs/**/*.md under ``root``, those that exist."""
    readme = root / "README.md"
    return ([readme] if readme.exists() else []) + sorted((root / "docs").glob("**/*.md"))


def blocks_in(text: str) -> dict[str, str]:
    """Each generated block's body (without its marker lines), by name."""
    return {match["name"]: match["body"] for match in BLOCK.finditer(text)}


def with_bodies(text: str, bodies: dict[str, str]) -> str:
    """``text`` with each block named in ``bodies`` holding that body; other blocks as they were."""
    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        body = bodies.get(name, match["body"])
        return f"<!-- BEGIN generated {name} -->\n{body}<!-- END generated {name} -->"
    return BLOCK.sub(replace, text)

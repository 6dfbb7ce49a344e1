"""One name, one thing: the names that once meant two things in the code are each defined once, and no
two modules of the library, the application or the stages share the file name ``tables.py``."""

from __future__ import annotations

import ast
from collections import Counter

from project import ROOT

CODE = ("ban", "ban_pipeline", "stages")
ONCE = ("check_data", "Progress", "readable", "experiment_name", "Settings")


def test_each_of_these_names_is_defined_in_one_place() -> None:
    defined: Counter[str] = Counter()
    for path in [path for package in CODE for path in (ROOT / package).rglob("*.py")]:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in ONCE:
                defined[node.name] += 1
    assert {name: count for name, count in defined.items() if count > 1} == {}


def test_one_module_named_tables() -> None:
    assert [str(path.relative_to(ROOT)) for package in CODE for path in (ROOT / package).rglob("tables.py")] \
        == ["stages/tables.py"]

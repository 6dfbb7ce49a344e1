"""The layers of the code: the library ``ban`` imports neither the application nor the stages, the
application imports no stage, no stage imports another (only the shared runner ``stages.cli``), and the
packages inside the library import each other without a loop."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from project import ROOT

LAYERS = ("ban", "ban_pipeline", "stages", "bench")  # each may import only those before it


def imports(path: Path) -> Iterator[str]:
    """Every absolute module name an ``import`` or ``from ... import`` in ``path`` names."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_each_layer_imports_only_the_layers_below_it() -> None:
    upward = []
    for index, layer in enumerate(LAYERS):
        above = LAYERS[index + 1:]
        for path in sources(layer):
            upward += [f"{path.relative_to(ROOT)} imports {name}" for name in imports(path)
                       if name.split(".")[0] in above]
    assert upward == []


def test_no_stage_imports_another_stage() -> None:
    found = [f"{path.name} imports {name}" for path in sources("stages") for name in imports(path)
             if name.startswith("stages.") and name != "stages.cli"]
    assert found == []


def package_graph() -> dict[str, set[str]]:
    """``ban``'s subpackages (and top modules) and the others each one imports."""
    graph: dict[str, set[str]] = {}
    for path in sources("ban"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if len(parts) < 2 or parts[1] == "__init__":
            continue
        source = parts[1]
        for name in imports(path):
            target = name.split(".")
            if target[0] == "ban" and len(target) > 1 and target[1] != source:
                graph.setdefault(source, set()).add(target[1])
    return graph


def test_the_library_packages_import_each_other_without_a_loop() -> None:
    graph = package_graph()
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> list[str]:
        state[node] = "open"
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == "open":
                return [*trail, node, successor]
            if successor not in state and (loop := visit(successor, [*trail, node])):
                return loop
        state[node] = "done"
        return []

    for node in sorted(graph):
        if node not in state and (loop := visit(node, [])):
            raise AssertionError(f"package loop: {' -> '.join(loop)}")

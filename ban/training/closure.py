"""The repository files a module imports, transitively: the exact code a stage depends on.

Read statically from the source, so the answer covers every path through the code (an import
inside a function counts, whichever branch takes it). Importing ``a.b.c`` also runs
``a/__init__.py`` and ``a/b/__init__.py``. A registry (``ban.core.registry.Registry(kind, "pkg")``)
imports every module of its package, so code that creates one depends on all of them; one read by
name (``Registry(kind, "pkg", by_name=True)``) imports only the modules params select, which are no
part of the static closure (``ban.training.sources`` records them per stage). Modules outside the
repository (torch, dvc) are not followed.

``dvc.yaml`` lists these files as each stage's dependencies (a test keeps the two equal), and a
train stage's resume state is fingerprinted with the same files.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def module_files(module: str, root: Path = ROOT) -> list[Path]:
    """Paths, relative to ``root``, of every repository file that running ``module`` may import."""
    found: dict[str, Path] = {}
    seen: set[str] = set()  # a name outside the repository (torch, a class) is looked up once, not per import
    pending = [module]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_path(name, root)
        if path is None:
            continue
        found[name] = path
        parts = name.split(".")
        pending += [".".join(parts[:end]) for end in range(1, len(parts))]
        imported, packages = source_references(path.read_text(), name, path.name == "__init__.py")
        pending += imported
        for package in packages:
            pending += [package, *package_modules(package, root)]
    return sorted(path.relative_to(root) for path in found.values())


def module_path(name: str, root: Path) -> Path | None:
    """The file of module ``name`` inside ``root`` (a module file or a package's ``__init__.py``)."""
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@functools.cache  # a stage's modules share imports, and ``validate`` asks for every stage's: parse once
def source_references(source: str, module: str, is_package: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """:func:`references` of a module's source text."""
    names, packages = references(ast.parse(source), module, is_package)
    return tuple(names), tuple(packages)


def references(tree: ast.AST, module: str, is_package: bool) -> tuple[list[str], list[str]]:
    """Every module an ``import`` or ``from ... import`` anywhere in ``tree`` may load, and the packages
    named by its ``Registry(kind, "package")`` calls that import every module of theirs.

    ``from a import b`` names both ``a`` and ``a.b`` (``b`` may be a submodule); names that are
    not modules simply resolve to no file. One walk finds both: walking a tree takes longer than
    parsing it, and every train stage reads its closure when it starts (its resume fingerprint).
    """
    names: list[str] = []
    packages: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            names += [base, *(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")]
        elif isinstance(node, ast.Call) and _is_registry(node):
            packages.append(str(node.args[1].value))
    return names, packages


def _is_registry(node: ast.Call) -> bool:
    """A ``Registry(kind, "package")`` that imports its whole package (not one read ``by_name``)."""
    function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    by_name = any(keyword.arg == "by_name" and not (isinstance(keyword.value, ast.Constant)
                                                     and keyword.value.value is False)
                  for keyword in node.keywords)
    return (function == "Registry" and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
            and not by_name)


def package_modules(package: str, root: Path) -> list[str]:
    """The modules and subpackages directly inside ``package`` (what ``pkgutil.iter_modules`` lists)."""
    directory = root.joinpath(*package.split("."))
    modules = [path.stem for path in directory.glob("*.py") if path.name != "__init__.py"]
    modules += [path.name for path in directory.iterdir() if (path / "__init__.py").is_file()]
    return [f"{package}.{name}" for name in sorted(modules)]


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    anchor = parts if is_package else parts[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, *([node.module] if node.module else [])])

"""The library installs as a package with its core dependencies alone: ``pip install .`` and
``pip install -e .`` into a fresh virtual environment that holds only the core's requirements give a
working ``ban``, and the application says which extra it needs; the declared dependencies cover every
import, and the lock (requirements.txt) satisfies them."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator
from importlib.metadata import Distribution, distribution, packages_distributions, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from project import ROOT

from ban_pipeline import PIPELINE_MODULES

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CORE = PROJECT["dependencies"]
EXTRAS = PROJECT["optional-dependencies"]
NOT_CORE = ("dvc", "dvclive", "ray", "pandas", "matplotlib", "scipy", "hydra", "psutil", "sklearn",
            "tabulate")

# Outside the repository, what a user of the library does: every module imports, an objective's loss on a
# network's logits, one training step; the application and the digits dataset say which extra they need.
USE = """
import importlib, json, pkgutil, sys
import torch, ban
for module in pkgutil.walk_packages(ban.__path__, "ban."):
    importlib.import_module(module.name)
from ban.nets import build_model
from ban.objectives import OBJECTIVES, StepInputs, loss_terms
from ban.core.config import DataConfig, KDConfig
from ban.core.errors import MissingExtra
net = build_model("resnet", {"depth": 8, "width": 4}, in_channels=1, num_classes=10)
x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,))
loss = loss_terms(StepInputs(net(x), y, net(x).detach(), KDConfig(mode="ban")))["kd"]
loss.backward()
errors = []
for needs_extra in (lambda: importlib.import_module("ban_pipeline"),
                    lambda: importlib.import_module("ban.datasets.digits").prepare(DataConfig())):
    try:
        needs_extra()
    except MissingExtra as error:
        errors.append(str(error))
print(json.dumps({"location": ban.__file__, "objectives": sorted(OBJECTIVES.names()),
                  "positive": bool(loss > 0), "errors": errors,
                  "absent": [name for name in NOT_CORE if importlib.util.find_spec(name) is None],
                  "loaded": sorted({name.split(".")[0] for name in sys.modules})}))
"""


def normalised(requirement: str) -> str:
    return canonicalize_name(Requirement(requirement).name)


def imports(paths: Iterable[Path], module_level_only: bool) -> set[str]:
    """The top-level names of the absolute imports in ``paths``: all of them, or only those a module
    runs when it is imported (not inside a function or an ``if TYPE_CHECKING:`` block)."""
    found: set[str] = set()
    for path in paths:
        tree = ast.parse(path.read_text())
        nodes = _module_level(tree.body) if module_level_only else ast.walk(tree)
        for node in nodes:
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"ban", "ban_pipeline", "stages"}


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    for node in body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.If | ast.Try | ast.With):
            handlers = [statement for handler in getattr(node, "handlers", []) for statement in handler.body]
            yield from _module_level([*node.body, *handlers, *getattr(node, "orelse", []),
                                      *getattr(node, "finalbody", [])])
        elif not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node


def distributions_of(modules: set[str]) -> set[str]:
    owners = packages_distributions()
    return {canonicalize_name(owners[module][0]) for module in modules}


def test_the_core_dependencies_cover_what_importing_the_library_imports() -> None:
    needed = distributions_of(imports((ROOT / "ban").rglob("*.py"), module_level_only=True))
    assert needed - {normalised(r) for r in CORE} == set()


def test_the_core_and_the_extras_cover_every_import() -> None:
    declared = {normalised(r) for r in CORE} | {normalised(r) for extra in EXTRAS.values() for r in extra}
    code = [path for package in ("ban", "ban_pipeline", "stages") for path in (ROOT / package).rglob("*.py")]
    assert distributions_of(imports(code, module_level_only=False)) - declared == set()


def test_the_pipeline_checks_for_the_modules_of_its_extra() -> None:
    """``ban_pipeline`` names the extra `pipeline` when one of its packages is missing: it looks for one
    module of each distribution of that extra, and for nothing else."""
    owners = packages_distributions()
    owned = {module: {canonicalize_name(name) for name in owners[module]} for module in PIPELINE_MODULES}
    extra = {normalised(r) for r in EXTRAS["pipeline"]}
    assert all(distributions & extra for distributions in owned.values()), owned
    assert extra == set().union(*owned.values()) & extra


def locked() -> dict[str, str]:
    """requirements.txt's pins, by normalised name."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)", line):
            pins[normalised(match[1])] = match[2]
    return pins


def test_the_lock_satisfies_every_declared_dependency() -> None:
    """What ``pip install .[pipeline,cluster,dev]`` would accept: every requirement of the core and of the
    extras is pinned in requirements.txt at a version it allows, torch and torchvision included."""
    pins = locked()
    for requirement in map(Requirement, [*CORE, *(r for extra in EXTRAS.values() for r in extra)]):
        name = canonicalize_name(requirement.name)
        assert name in pins and requirement.specifier.contains(pins[name]), (str(requirement), pins.get(name))
    assert (pins["torch"], pins["torchvision"]) == (version("torch"), version("torchvision"))


def needed_distributions(requirements: Iterable[str]) -> dict[str, Distribution]:
    """The installed distributions that ``requirements`` need, transitively: markers evaluated for this
    interpreter, each requirement's extras followed."""
    found: dict[str, Distribution] = {}
    pending = [(Requirement(r), {""}) for r in requirements]
    while pending:
        requirement, extras = pending.pop()
        if requirement.marker and not any(requirement.marker.evaluate({"extra": e}) for e in extras):
            continue
        name = canonicalize_name(requirement.name)
        if name in found and not requirement.extras:
            continue
        found[name] = distribution(requirement.name)
        pending += [(Requirement(r), {"", *requirement.extras}) for r in found[name].requires or []]
    return found


def environment_of(directory: Path, distributions: Iterable[Distribution]) -> Path:
    """A fresh virtual environment that holds exactly ``distributions`` (no system site packages), each
    linked from where this interpreter has it installed: torch is not copied, and nothing else this
    interpreter sees is visible. Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True)
    python = directory / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    for installed in distributions:
        assert installed.files is not None, f"{installed.metadata['Name']} lists no files (RECORD)"
        root = Path(installed.locate_file(""))
        for top in {file.parts[0] for file in installed.files} - {"..", "__pycache__"}:
            if not (site / top).exists():
                (site / top).symlink_to(root / top)
    return python


def project_copy(directory: Path) -> Path:
    """What the build reads (a copy, so that the build leaves nothing in the repository)."""
    directory.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, directory / name)
    for package in ("ban", "ban_pipeline"):
        shutil.copytree(ROOT / package, directory / package, ignore=shutil.ignore_patterns("__pycache__"))
    return directory


@pytest.mark.slow
@pytest.mark.parametrize("editable", [True, False], ids=["pip install -e .", "pip install ."])
def test_the_core_installs_alone_and_the_library_works_outside_the_repository(tmp_path: Path,
                                                                               editable: bool) -> None:
    """In a virtual environment holding only the core's requirements (and pip and setuptools to install
    with), wherever this suite runs: a system interpreter or a virtual environment. ``pip check`` then
    proves the declared core requirements are all there is to install."""
    source = project_copy(tmp_path / "source")
    environment = tmp_path / "venv"
    python = environment_of(environment, needed_distributions([*CORE, "pip", "setuptools"]).values())
    install = [python, "-m", "pip", "install", "--no-index", "--no-build-isolation", "--no-deps", "-q",
               *(["-e"] if editable else []), str(source)]
    result = subprocess.run(install, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    check = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    used = subprocess.run([python, "-c", f"NOT_CORE = {NOT_CORE!r}\n{USE}"], capture_output=True, text=True,
                          cwd=tmp_path)
    assert used.returncode == 0, used.stderr
    report = json.loads(used.stdout)
    assert Path(report["location"]).is_relative_to(source if editable else environment), report["location"]
    assert (report["objectives"], report["positive"]) == (["ban", "cwtm", "dkpp", "none"], True)
    assert report["absent"] == list(NOT_CORE)  # nothing beyond the core was visible
    assert set(NOT_CORE) & set(report["loaded"]) == set()
    pipeline, digits = report["errors"]
    assert pipeline.startswith("ban_pipeline (the stages, reports, paper tables and launcher) needs dvc, ")
    assert pipeline.endswith("the extra 'pipeline' installs: pip install 'born-again-networks[pipeline]'")
    assert digits.endswith("the extra 'digits' installs: pip install 'born-again-networks[digits]'")
    if not editable:
        site = next((environment / "lib").glob("python3*/site-packages"))
        installed = {path.name for path in site.iterdir() if not path.is_symlink()}
        assert {"ban", "ban_pipeline"} <= installed and not {"stages", "tests", "bench", "data"} & installed

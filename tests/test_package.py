"""The library installs as a package: ``pip install -e .`` and ``pip install .`` give an importable ``ban``
with its registries whole, and the declared dependencies cover what it imports."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from project import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# Outside the repository, what a user of the library does: an objective's loss on a network's logits.
USE = """
import torch, ban
from ban.nets import build_model
from ban.objectives import OBJECTIVES, StepInputs, loss_terms
from ban.core.config import KDConfig
net = build_model("resnet", {"depth": 8, "width": 4}, in_channels=1, num_classes=10)
x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,))
loss = loss_terms(StepInputs(net(x), y, net(x).detach(), KDConfig(mode="ban")))["kd"]
print(ban.__file__)
print(",".join(sorted(OBJECTIVES.names())))
print(bool(loss > 0))
"""


def normalised(requirement: str) -> str:
    return re.split(r"[<>=!~\\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_declared_dependencies_cover_every_import_of_the_library() -> None:
    declared = {normalised(r) for r in PYPROJECT["project"]["dependencies"]}
    for extra in PYPROJECT["project"]["optional-dependencies"].values():
        declared |= {normalised(r) for r in extra}
    imported: set[str] = set()
    for path in (ROOT / "ban").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"ban"}
    distributions = packages_distributions()
    needed = {normalised(distributions[module][0]) for module in third_party}
    assert needed - declared - {"pillow"} == set()  # pillow comes with torchvision


def test_the_declared_dependencies_are_satisfied_by_what_is_installed() -> None:
    """What ``pip install .`` would accept without installing anything: every declared requirement is met
    by the versions that requirements.txt installs."""
    for requirement in map(Requirement, PYPROJECT["project"]["dependencies"]):
        installed = version(requirement.name)
        assert requirement.specifier.contains(installed), (requirement, installed)


def library_copy(directory: Path) -> Path:
    """What the build reads (a copy, so that the build leaves nothing in the repository)."""
    directory.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, directory / name)
    shutil.copytree(ROOT / "ban", directory / "ban", ignore=shutil.ignore_patterns("__pycache__"))
    return directory


@pytest.mark.slow
@pytest.mark.parametrize("editable", [True, False], ids=["pip install -e .", "pip install ."])
def test_the_library_installs_and_works_outside_the_repository(tmp_path: Path, editable: bool) -> None:
    """In a virtual environment that sees this machine's packages, so that nothing is downloaded; pip
    builds and installs ``ban`` alone (the dependencies are checked below, as pip's resolver would but
    without its minute of reading metadata)."""
    source = library_copy(tmp_path / "source")
    environment = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(environment)], check=True)
    python = str(environment / "bin" / "python")
    install = [python, "-m", "pip", "install", "--no-index", "--no-build-isolation", "--no-deps", "-q",
               *(["-e"] if editable else []), str(source)]
    result = subprocess.run(install, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    used = subprocess.run([python, "-c", USE], capture_output=True, text=True, cwd=tmp_path)
    assert used.returncode == 0, used.stderr
    location, objectives, positive = used.stdout.splitlines()
    assert Path(location).is_relative_to(source if editable else environment), location
    assert (objectives, positive) == ("ban,cwtm,dkpp,none", "True")
    if not editable:
        site = next((environment / "lib").glob("python3*/site-packages"))
        installed = {path.name for path in site.iterdir()}
        assert "ban" in installed and not {"stages", "tests", "bench", "data", "models"} & installed

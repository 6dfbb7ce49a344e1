"""Each stage in dvc.yaml depends on exactly the repository files its command imports, transitively, and on
the record of the modules its params select.

The import closure is read from the code (``ban.training.closure``), so an import added without its
dependency in dvc.yaml, or a dependency left behind after an import was removed, fails here. The modules a
registry read by name imports (a network, an objective, a schedule, a dataset) are chosen by params: a
stage that reads such a registry depends on its record ``code/<stage>.json`` instead, which the
``validate`` stage writes (``ban.training.sources``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from project import ROOT, environment

from ban.training.closure import module_files

CODE = ("ban", "ban_pipeline", "stages")


def stages() -> dict[str, dict]:
    """Every stage of dvc.yaml; a foreach stage by its template (its deps do not vary in code)."""
    defined = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in defined.items()}


def code_dependencies(deps: list[str]) -> set[str]:
    """The Python files a stage's deps cover: a directory stands for every file in it."""
    files: set[str] = set()
    for dep in deps:
        path = ROOT / dep
        if dep.split("/")[0] not in CODE:
            continue  # data and other stages' outputs
        assert path.exists(), f"dvc.yaml lists {dep}, which does not exist"
        found = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        files |= {str(file.relative_to(ROOT)) for file in found}
    return files


@pytest.mark.parametrize("name", stages())
def test_each_stage_depends_on_exactly_the_files_its_command_imports(name: str) -> None:
    stage = stages()[name]
    module = stage["cmd"].split()[2]  # python -m <module> [arguments]
    imported = {str(path) for path in module_files(module)}
    listed = code_dependencies(stage["deps"])
    assert listed == imported, (f"stage {name}: dvc.yaml lacks {sorted(imported - listed)} and lists "
                                f"{sorted(listed - imported)} that `{stage['cmd']}` does not import")


# the packages of the registries read by name: a stage that imports one depends on a code record
BY_NAME = ("ban/nets/__init__.py", "ban/objectives/__init__.py", "ban/datasets/__init__.py",
           "ban/training/schedules/__init__.py")
RECORDS = {"prepare": "code/prepare.json", "teacher": "code/gen0.json", "student": "code/${key}.json"}


@pytest.mark.parametrize("name", stages())
def test_a_stage_that_reads_a_registry_by_name_depends_on_its_code_record(name: str) -> None:
    stage = stages()[name]
    imported = {str(path) for path in module_files(stage["cmd"].split()[2])}
    records = [dep for dep in stage["deps"] if dep.startswith("code/")]
    if name == "validate":  # it writes the records
        assert stage["always_changed"] and stage["outs"] == [{"code": {"cache": False}}]
    elif imported & set(BY_NAME):
        assert records == [RECORDS[name]]
    else:
        assert records == []


def test_a_registry_read_by_name_imports_only_the_selected_module() -> None:
    """In a fresh interpreter: the BAN objective and the ResNet family, and none of their siblings."""
    code = ("import sys\nfrom ban.objectives import OBJECTIVES\nfrom ban.nets import get_architecture\n"
            "OBJECTIVES.get('ban', 'kd.mode')\nget_architecture('resnet')\n"
            "print(sorted(m for m in sys.modules if m.startswith(('ban.objectives.', 'ban.nets.'))))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment(), capture_output=True,
                            text=True, check=True)
    selected = ["ban.nets.resnet", "ban.objectives.ban", "ban.objectives.functional"]
    assert result.stdout.strip() == str(selected)


def test_training_and_reporting_do_not_share_code_beyond_the_core() -> None:
    """The train stages never import reporting, dataset preparation or ensembles; evaluate never trains."""
    train = {str(path) for path in module_files("stages.train")}
    assert not any(path.startswith(("ban_pipeline/reporting", "ban/datasets", "ban/ensemble", "ban/presets"))
                   for path in train)
    evaluate = {str(path) for path in module_files("stages.evaluate")}
    assert not any(path.startswith(("ban/training", "ban/nets", "ban/objectives")) for path in evaluate)


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_closure_follows_every_kind_of_import(tmp_path: Path) -> None:
    write(tmp_path, {
        "app/__init__.py": "",
        "app/main.py": "import os\nfrom app import util\n\ndef later():\n    from app.lazy import thing\n",
        "app/util.py": "from .deep import helper\n",
        "app/deep/__init__.py": "",
        "app/deep/helper.py": "import torch\n",
        "app/lazy.py": "thing = 1\n",
        "app/unused.py": "",
    })
    assert [str(path) for path in module_files("app.main", tmp_path)] == [
        "app/__init__.py", "app/deep/__init__.py", "app/deep/helper.py", "app/lazy.py", "app/main.py",
        "app/util.py"]


def test_a_registry_depends_on_every_module_of_its_package_unless_read_by_name(tmp_path: Path) -> None:
    write(tmp_path, {
        "app/__init__.py": "",
        "app/plugins/__init__.py": "from app.registry import Registry\nPLUGINS = Registry('plugin', "
                                   "'app.plugins')\n",
        "app/plugins/one.py": "from app.plugins import PLUGINS\n",
        "app/plugins/two.py": "",
        "app/registry.py": "class Registry: ...\n",
        "app/main.py": "from app.plugins import PLUGINS\n",
    })
    assert [str(path) for path in module_files("app.main", tmp_path)] == [
        "app/__init__.py", "app/main.py", "app/plugins/__init__.py", "app/plugins/one.py",
        "app/plugins/two.py", "app/registry.py"]
    by_name = "from app.registry import Registry\nPLUGINS = Registry('plugin', 'app.plugins', by_name=True)\n"
    write(tmp_path, {"app/plugins/__init__.py": by_name})
    assert [str(path) for path in module_files("app.main", tmp_path)] == [
        "app/__init__.py", "app/main.py", "app/plugins/__init__.py", "app/registry.py"]

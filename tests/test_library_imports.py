"""The library ``ban`` imports only its core dependencies: every module of it, imported in a fresh
interpreter, loads none of the application's packages, and a feature that needs an extra names it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from project import ROOT

from ban.core.errors import BanError, MissingExtra, import_optional, require_extra

APPLICATION_PACKAGES = {"dvc", "dvclive", "ray", "pandas", "matplotlib", "scipy", "hydra", "psutil",
                        "sklearn"}

EVERY_MODULE = """
import importlib, json, pkgutil, sys
import ban
names = [module.name for module in pkgutil.walk_packages(ban.__path__, "ban.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": sorted({name.split(".")[0] for name in sys.modules})}))
"""


def test_every_library_module_imports_without_the_applications_packages() -> None:
    result = subprocess.run([sys.executable, "-c", EVERY_MODULE], capture_output=True, text=True, cwd=ROOT,
                            check=True)
    found = json.loads(result.stdout)
    assert {"ban.objectives.ban", "ban.nets.resnet", "ban.training.engine", "ban.training.generation",
            "ban.datasets.digits"} <= set(found["modules"])
    assert APPLICATION_PACKAGES & set(found["loaded"]) == set()
    assert "torch" in found["loaded"]  # the check sees what was imported


def test_a_missing_optional_package_names_the_extra_that_installs_it() -> None:
    with pytest.raises(MissingExtra) as raised:
        import_optional("ban_absent_package.sub", "digits", "the digits dataset")
    assert str(raised.value) == ("the digits dataset needs ban_absent_package, which the extra 'digits' "
                                 "installs: pip install 'born-again-networks[digits]'")
    assert isinstance(raised.value, ImportError) and isinstance(raised.value, BanError)  # one line in stages
    with pytest.raises(MissingExtra, match=r"needs ban_absent_a, ban_absent_b, .*\[pipeline\]'$"):
        require_extra("pipeline", ("json", "ban_absent_a", "ban_absent_b"), "the pipeline")
    require_extra("pipeline", ("json", "torch"), "the pipeline")  # installed: nothing raised


def test_an_import_error_inside_an_installed_package_is_not_blamed_on_the_extra() -> None:
    with pytest.raises(ModuleNotFoundError) as raised:
        import_optional("ban.no_such_module", "digits", "nothing")
    assert not isinstance(raised.value, MissingExtra)

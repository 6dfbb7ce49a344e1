"""Networks named by import path (``package.module:callable``): the contract of docs/networks.md, and the
one-line errors of the ``validate`` stage, which runs before anything trains."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
import yaml
from project import FAST, ROOT, merge
from stage_process import run_here

from ban.nets import build_model, get_architecture
from stages import validate

DOCS = ROOT / "docs/networks.md"


def documented_example() -> str:
    """The example file of docs/networks.md, as written there."""
    return re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S).group(1)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "mynets").mkdir()
    (tmp_path / "mynets/small.py").write_text(documented_example())
    (tmp_path / "mynets/broken.py").write_text("import not_a_module_anywhere\n")
    (tmp_path / "mynets/odd.py").write_text(
        "from torch import nn\n\n\ndef five(num_classes: int) -> nn.Module:\n"
        "    return nn.Sequential(nn.Flatten(), nn.LazyLinear(5))\n\n\n"
        "def nothing(num_classes: int) -> int:\n    return num_classes\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # a stage runs from the project root, which Python searches
    return tmp_path


def validated(project: Path, overrides: dict[str, Any]) -> tuple[int, str]:
    """The validate stage's exit status and stderr; ``model`` in ``overrides`` replaces FAST's whole."""
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), merge(FAST, overrides))
    params["model"] = overrides.get("model", FAST["model"])
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return run_here(project, validate.main, [])


def test_the_documented_example_builds_with_the_data_arguments_its_signature_names(project: Path) -> None:
    model = build_model("mynets.small:build", {"width": 4}, in_channels=3, num_classes=7, image_size=9,
                        vocab_size=99)
    assert model(torch.zeros(2, 3, 9, 9)).shape == (2, 7)
    assert get_architecture("mynets.small:build").task == "image"
    assert get_architecture("mynets.small:build").option_names() == {"width"}


def test_torchvision_builders_get_num_classes_and_take_any_option() -> None:
    architecture = get_architecture("torchvision.models:resnet18")
    assert architecture.option_names() is None  # **kwargs
    model = build_model("torchvision.models:resnet18", {"zero_init_residual": True}, in_channels=3,
                        num_classes=4, image_size=16)
    assert isinstance(model, torchvision.models.ResNet) and model.fc.out_features == 4


def test_a_valid_imported_network_passes_validate(project: Path) -> None:
    status, stderr = validated(project, {"model": {"arch": "mynets.small:build", "width": 4}})
    assert (status, stderr) == (0, "")
    assert sorted(path.name for path in (project / "code").iterdir()) == [
        "gen0.json", "gen1.json", "gen2.json", "prepare.json"]


BAD = {
    "import fails": ({"arch": "mynets.smal:build"},
                     "model.arch: cannot import 'mynets.smal' (ModuleNotFoundError: No module named "
                     "'mynets.smal')"),
    "module fails as it runs": ({"arch": "mynets.broken:build"},
                                "model.arch: cannot import 'mynets.broken' (ModuleNotFoundError: No module "
                                "named 'not_a_module_anywhere')"),
    "no such callable": ({"arch": "mynets.small:buidl"}, "model.arch: module 'mynets.small' has no 'buidl'"),
    "not an import path": ({"arch": "mynets.small:"},
                           "model.arch: 'mynets.small:' is not an import path `package.module:callable`"),
    "option it does not take": ({"arch": "mynets.small:build", "depth": 3},
                                "model.depth: not an option of 'mynets.small:build'; valid: width"),
    "option refused inside": ({"arch": "torchvision.models:resnet18", "depth": 3},
                              "model.arch: 'torchvision.models:resnet18' refused its arguments "
                              "(ResNet.__init__() got an unexpected keyword argument 'depth')"),
    "wrong output": ({"arch": "mynets.odd:five"},
                     "model.arch: 'mynets.odd:five' maps a batch of shape [2, 1, 8, 8] to [2, 5]; "
                     "expected [2, 10] (batch x num_classes)"),
    "not a network": ({"arch": "mynets.odd:nothing"},
                      "model.arch: 'mynets.odd:nothing' returned int, not a torch.nn.Module"),
    "wrong input": ({"arch": "torchvision.models:resnet18"},
                    "model.arch: 'torchvision.models:resnet18' fails on a batch of shape [2, 1, 8, 8] "
                    "(Given groups=1, weight of size [64, 3, 7, 7], expected input[2, 1, 8, 8] to have 3 "
                    "channels, but got 1 channels instead)"),
}


@pytest.mark.parametrize("model, message", BAD.values(), ids=BAD.keys())
def test_a_bad_imported_network_fails_validate_with_one_line(project: Path, model: dict[str, Any],
                                                             message: str) -> None:
    assert validated(project, {"model": model}) == (2, f"error: {message}\n")
    assert not (project / "code").exists()


def test_a_teacher_network_is_named_by_teacher_keys(project: Path) -> None:
    status, stderr = validated(project, {"teacher": {"arch": "mynets.small:build", "options": {"depth": 3}}})
    assert (status, stderr) == (2, "error: teacher.options.depth: not an option of 'mynets.small:build'; "
                                   "valid: width\n")

"""A teacher from outside the chain (``teacher.checkpoint``): loaded, evaluated, written as a trained one.

The weights files are real ``torch.save`` files in the forms public checkpoints ship in; the stage runs
in this process on a prepared digits subset. Every bad input ends the stage with one line, a non-zero
exit and nothing under ``models/``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from project import FAST, merge, write_params
from stage_process import prepare, run_here

from ban.core.paths import PREPARED
from ban.data.prepared import load_prepared
from ban.nets import build_model
from ban.training.checkpoint import save_model
from stages import train

NETWORK = {"depth": 8, "width": 4}  # FAST's model
WEIGHTS = "weights/teacher.pt"


def network(in_channels: int = 1, num_classes: int = 10) -> torch.nn.Module:
    torch.manual_seed(3)
    return build_model("resnet", NETWORK, in_channels=in_channels, num_classes=num_classes)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("prepared")
    write_params(base, FAST)
    prepare(base)
    return base / PREPARED


@pytest.fixture
def project(prepared: Path, tmp_path: Path) -> Path:
    shutil.copytree(prepared, tmp_path / PREPARED)
    write_params(tmp_path, merge(FAST, {"teacher": {"checkpoint": WEIGHTS}}))
    (tmp_path / WEIGHTS).parent.mkdir()
    return tmp_path


def save(project: Path, saved: Any) -> None:
    torch.save(saved, project / WEIGHTS)


def by_hand(model: torch.nn.Module, project: Path, split: str) -> tuple[float, float]:
    """(error %, mean probability of the true class) of ``model`` on a prepared split, computed here."""
    prepared = load_prepared(project / PREPARED)
    images, labels = prepared.tensors[f"{split}_x"], prepared.tensors[f"{split}_y"]
    mean = torch.tensor(prepared.meta["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(prepared.meta["std"]).view(1, -1, 1, 1)
    with torch.no_grad():
        probs = torch.softmax(model.eval()((images.float() / 255 - mean) / std), dim=1)
    error = (probs.argmax(1) != labels).double().mean().item() * 100
    return error, probs.gather(1, labels[:, None]).double().mean().item()


def state_with_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"module.{key}": value for key, value in state.items()}


FORMS = {
    "plain": (lambda state: state, "a plain state_dict"),
    "state_dict": (lambda state: {"state_dict": state, "epoch": 90}, "a state_dict under 'state_dict'"),
    "model": (lambda state: {"model": state, "optimizer": {}}, "a state_dict under 'model'"),
    "module prefix": (state_with_prefix, "a plain state_dict, 'module.' prefix removed"),
    "under model, module prefix": (lambda state: {"model": state_with_prefix(state)},
                                   "a state_dict under 'model', 'module.' prefix removed"),
}


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_each_common_form_loads_and_the_teacher_is_evaluated_not_trained(
        project: Path, form: Any, capsys: pytest.CaptureFixture) -> None:
    wrap, described = form
    model = network()
    save(project, wrap(model.state_dict()))
    assert run_here(project, train.main, ["gen0"]) == (0, "")
    assert f"loaded from {WEIGHTS} ({described})" in capsys.readouterr().out
    metrics = json.loads((project / "metrics/gen0.json").read_text())
    test_error, _ = by_hand(model, project, "test")
    train_error, true_prob = by_hand(model, project, "train")
    assert metrics["epochs"] == 0
    assert metrics["test_error"] == pytest.approx(test_error)
    assert metrics["train_error"] == pytest.approx(train_error)
    assert metrics["teacher_true_prob"] == pytest.approx(true_prob, rel=1e-5)
    saved = torch.load(project / "models/gen0.pt", weights_only=True)
    assert saved["format"] == "ban-checkpoint-1" and saved["arch"] == "resnet"
    assert all(torch.equal(saved["state_dict"][k], v) for k, v in model.state_dict().items())
    predictions = torch.load(project / "preds/gen0.pt", weights_only=True)
    assert predictions["metrics"]["test_error"] == metrics["test_error"]
    assert (project / "dvclive/gen0/metrics.json").is_file()


def test_a_checkpoint_this_project_wrote_loads(project: Path, capsys: pytest.CaptureFixture) -> None:
    model = network()
    save_model(model, project / WEIGHTS, generation="gen2", arch="resnet", options=NETWORK,
               data_signature={"task": "image", "shape": [1, 8, 8], "classes": 10})
    assert run_here(project, train.main, ["gen0"]) == (0, "")
    assert "(a checkpoint of this project (gen2))" in capsys.readouterr().out


class Opaque:
    """Anything whose unpickling would run code."""


def write_text(project: Path) -> None:
    (project / WEIGHTS).write_text("not a checkpoint\n")


def missing_and_unexpected(project: Path) -> None:
    state = network().state_dict()
    state["head.extra"] = state.pop("head.2.bias")
    save(project, state)


BAD = {
    "missing file": (lambda project: None, f"teacher.checkpoint: {WEIGHTS} not found"),
    "not a weights file": (write_text, f"teacher.checkpoint: {WEIGHTS} is not a weights file we can load: "
                                       "corrupt or unsafe: it is not made of tensors and plain data only "
                                       "(nothing in it was run)"),
    "pickle that needs code": (
        lambda project: save(project, {"model": Opaque()}),
        f"teacher.checkpoint: {WEIGHTS} is not a weights file we can load: unsafe: loading it would call "
        "test_outside_teacher.Opaque (refused, nothing was run)"),
    "whole module": (
        lambda project: save(project, network()),
        f"teacher.checkpoint: {WEIGHTS} is not a weights file we can load: unsafe: loading it would call "
        "torch.nn.modules.container.Sequential (refused, nothing was run)"),
    "not a state_dict": (lambda project: save(project, {"epoch": 3, "lr": 0.1}),
                         f"teacher.checkpoint: {WEIGHTS} holds a mapping of 'epoch', 'lr', not a state_dict "
                         "(parameter names to tensors), nor one under 'state_dict' or 'model'"),
    "missing and unexpected keys": (
        missing_and_unexpected,
        f"teacher.checkpoint: {WEIGHTS} does not fit teacher.arch 'resnet': missing head.2.bias; "
        "unexpected head.extra"),
    "class count": (
        lambda project: save(project, network(num_classes=3).state_dict()),
        f"teacher.checkpoint: {WEIGHTS} does not match the data: head.2.weight is [3, 16] in the file but "
        "[10, 16] in 'resnet' built for the data (shape [1, 8, 8], classes 10)"),
    "input shape": (
        lambda project: save(project, network(in_channels=3).state_dict()),
        f"teacher.checkpoint: {WEIGHTS} does not match the data: stem.0.weight is [4, 3, 3, 3] in the file "
        "but [4, 1, 3, 3] in 'resnet' built for the data (shape [1, 8, 8], classes 10)"),
}


@pytest.mark.parametrize("write, message", BAD.values(), ids=BAD.keys())
def test_bad_weights_end_the_stage_with_one_line_and_write_nothing(project: Path, write: Any,
                                                                   message: str) -> None:
    write(project)
    status, stderr = run_here(project, train.main, ["gen0"])
    assert (status, stderr) == (1, f"error: {message}\n")
    assert not (project / "models").exists() and not (project / "preds").exists()
    assert not (project / "metrics").exists()

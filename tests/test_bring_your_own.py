"""A chain from a teacher and networks brought from outside, through the real DVC pipeline.

In a fresh git + DVC repository with an ImageFolder the test writes: gen0 is a torchvision ResNet-18
loaded from a ``state_dict`` file (evaluated, not trained), gen1 a registered network and gen2 a network
file of the project (``mynets.small:build``, the example of docs/networks.md). A second repro runs nothing
but ``validate``; an edit to the user's network file re-runs exactly the stage that builds it; another
weights file makes the teacher's stage stale (the stages after it follow from its outputs, as for any
stage).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision
import yaml
from PIL import Image
from project import FAST, ROOT, make_project, merge, run, stages_run

from ban.data.prepared import load_prepared

pytestmark = pytest.mark.slow  # real pipelines: processes, DVC, git

WEIGHTS = "weights/resnet18.pt"
CLASSES = ("ant", "bee", "cat")
SIZE = 16
CHAIN = ["validate", "prepare", "teacher", "student@gen1", "student@gen2", "ensemble", "evaluate"]
OUTSIDE = {
    "data": {"name": "imagefolder", "root": "images", "train_subset": None},
    "teacher": {"checkpoint": WEIGHTS, "arch": "torchvision.models:resnet18"},
    "train": {"epochs": 1, "batch_size": 12},
}


def write_image_folder(root: Path) -> None:
    """Three classes of 16x16 RGB PNGs, 8 training and 4 test images each, told apart by their colour."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("test", 4)):
        for label, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for index in range(count):
                pixels = rng.integers(0, 120, (SIZE, SIZE, 3), dtype=np.uint8)
                pixels[..., label] += 120
                Image.fromarray(pixels).save(root / split / name / f"{index}.png")


def write_resnet18(project: Path, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(num_classes=len(CLASSES))
    (project / WEIGHTS).parent.mkdir(exist_ok=True)
    torch.save(model.state_dict(), project / WEIGHTS)
    return model


def documented_network() -> str:
    return re.search(r"```python\n(.*?)```", (ROOT / "docs/networks.md").read_text(), re.S).group(1)


def outside_project(directory: Path, model: dict[str, Any]) -> tuple[Path, torch.nn.Module]:
    """A committed project whose gen0 is a ResNet-18 state_dict, gen1 ``model`` and gen2 the network of
    docs/networks.md's example file."""
    project = make_project(directory)
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), merge(FAST, OUTSIDE))
    params["model"] = model
    params["students"] = {"gen1": {"teacher": "gen0"},
                          "gen2": {"teacher": "gen1", "model": {"arch": "mynets.small:build", "width": 4}}}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    write_image_folder(project / "images")
    (project / "mynets").mkdir()
    (project / "mynets/small.py").write_text(documented_network())
    teacher = write_resnet18(project, seed=0)
    run(project, "git", "add", "-A")
    run(project, "git", "commit", "-q", "-m", "outside teacher and data")
    return project, teacher


def error_by_hand(model: torch.nn.Module, project: Path) -> float:
    """``model``'s test error (%) on the prepared test images, normalised as training normalises them."""
    prepared = load_prepared(project / "data/prepared")
    mean = torch.tensor(prepared.meta["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(prepared.meta["std"]).view(1, -1, 1, 1)
    with torch.no_grad():
        logits = model.eval()((prepared.tensors["test_x"].float() / 255 - mean) / std)
    return (logits.argmax(1) != prepared.tensors["test_y"]).double().mean().item() * 100


def report_row(project: Path, name: str) -> dict[str, str]:
    text = (project / "reports/results.md").read_text()
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0] == name:
            return dict(zip(header, cells, strict=True))
    raise AssertionError(f"no row {name} in reports/results.md")


def test_a_torchvision_teacher_heads_a_registered_student_and_one_from_a_network_file(tmp_path: Path) -> None:
    project, teacher = outside_project(tmp_path / "project", FAST["model"])
    first = run(project, "dvc", "repro").stdout
    assert stages_run(first, validate=True) == CHAIN
    assert "evaluating it, not training" in first and "(a plain state_dict)" in first
    error = error_by_hand(teacher, project)
    metrics = yaml.safe_load((project / "metrics/gen0.json").read_text())
    assert metrics["epochs"] == 0 and metrics["test_error"] == pytest.approx(error)
    row = report_row(project, "gen0")
    assert (row["kind"], row["epochs"], row["test_error"]) == ("teacher", "0", f"{error:.2f}")
    assert len({report_row(project, name)["params"] for name in ("gen0", "gen1", "gen2")}) == 3
    records = {name: yaml.safe_load((project / f"code/{name}.json").read_text()) for name in ("gen1", "gen2")}
    assert "torchvision==" in " ".join(records["gen1"]["packages"])  # it runs its teacher, a ResNet-18
    assert "mynets/small.py" in records["gen2"]["files"] and "mynets/small.py" not in records["gen1"]["files"]
    assert stages_run(run(project, "dvc", "repro").stdout, validate=True) == ["validate"]
    with open(project / "mynets/small.py", "a") as file:
        file.write("\n\ndef unused() -> None:\n    pass\n")
    # gen2 builds it, its teacher gen1 (a registered ResNet) does not; its outputs are the same bytes
    assert stages_run(run(project, "dvc", "repro").stdout, validate=True) == ["validate", "student@gen2"]
    write_resnet18(project, seed=1)  # another weights file at the same path: the teacher's record changes
    run(project, "dvc", "repro", "validate")
    status = json.loads(run(project, "dvc", "status", "--json").stdout)
    assert {name for name, changes in status.items() if changes != ["always changed"]} == {"teacher"}

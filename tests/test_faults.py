"""Bad input ends a stage with one clear line and a non-zero status, and leaves no output behind.

Teachers: corrupt, truncated, of another architecture or data, missing, or a
malicious pickle (refused before it can run). Prepared data: corrupt, a class
without training examples, labels out of range, a malicious pickle. Image
folders whose test split lacks a class. Failures that happen before training
run through the stage's entry point in this process; the malicious teacher also
goes through a real stage process.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from project import FAST, make_project, merge, write_params
from stage_process import prepare, run_here, train

from ban.core.config import load_params
from ban.core.paths import PREPARED, model_path
from ban.data.prepared import load_prepared
from ban.nets import build_model
from ban.training.checkpoint import save_model
from ban.training.device import cuda_problem
from ban.training.domain import make_domain
from stages import prepare as prepare_stage
from stages import train as train_stage

pytestmark = pytest.mark.slow  # real pipelines: processes, DVC, git

PREPARED_HINT = "re-create it with `dvc repro prepare` (python -m stages.prepare)"
TEACHER_HINT = "re-create it with stage teacher (dvc repro)"
STUDENT_OUTPUTS = ("models/gen1.pt", "preds/gen1.pt", "state", "metrics/gen1.json", "dvclive/gen1")


class Planted:
    """A pickle that creates ``path`` when it is loaded: the attack weights_only loading refuses."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return open, (str(self.path), "w")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prepared digits and an (untrained) gen0 checkpoint, ready for gen1 to learn from."""
    project = make_project(tmp_path_factory.mktemp("faults") / "project", {"train": {"device": "cpu"}})
    prepare(project)
    params = load_params(project / "params.yaml")
    generation = params.generation("gen0")
    domain = make_domain(load_prepared(project / PREPARED), params.train, torch.device("cpu"), "fp32")
    network = build_model(generation.arch, generation.options, **domain.data_arguments())
    save_model(network, project / model_path("gen0"), generation="gen0", arch=generation.arch,
               options=generation.options, data_signature=domain.signature())
    return project


@pytest.fixture
def project(base: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(base, copy)
    return copy


def rewrite_teacher(project: Path, change: dict) -> None:
    path = project / model_path("gen0")
    saved = torch.load(path, weights_only=True)
    torch.save({**saved, **change}, path)


def rewrite_tensors(project: Path, split: str, change: Callable[[torch.Tensor], torch.Tensor]) -> None:
    path = project / PREPARED / "tensors.pt"
    tensors = torch.load(path, weights_only=True)
    tensors[f"{split}_y"] = change(tensors[f"{split}_y"].clone())
    torch.save(tensors, path)


def assert_nothing_written(project: Path, outputs: tuple[str, ...]) -> None:
    left = [name for name in outputs if (project / name).exists()]
    assert left == [], f"outputs written despite the failure: {left}"


def truncate(path: Path) -> None:
    """Keep the first kilobyte, as an interrupted copy would."""
    path.write_bytes(path.read_bytes()[:1000])


def scramble(project: Path) -> None:
    (project / model_path("gen0")).write_bytes(np.random.default_rng(0).bytes(4000))


OTHER_DATA = {"task": "image", "shape": [3, 32, 32], "classes": 100}
DIGITS = {"task": "image", "shape": [1, 8, 8], "classes": 10}
# What follows "error: checkpoint models/gen0.pt ", as a regular expression
TEACHER_FAULTS = {
    "truncated": (lambda project: truncate(project / model_path("gen0")),
                  re.escape("is corrupt (PytorchStreamReader failed reading zip archive: failed finding "
                            f"central directory); {TEACHER_HINT}")),
    "random bytes": (scramble, re.escape("is corrupt or unsafe: it is not made of tensors and plain data "
                                         f"only (nothing in it was run); {TEACHER_HINT}")),
    "other architecture": (
        lambda project: rewrite_teacher(project, {"options": {"depth": 8, "width": 8}}),
        r"does not fit architecture 'resnet' \(size mismatch for [\w.]+: " + re.escape(
            "copying a param with shape torch.Size([4, 1, 3, 3]) from checkpoint, the shape in current model "
            f"is torch.Size([8, 1, 3, 3]).); {TEACHER_HINT}")),
    "other data": (lambda project: rewrite_teacher(project, {"data": OTHER_DATA}),
                   re.escape(f"was trained on other data ({OTHER_DATA} vs {DIGITS}); {TEACHER_HINT}")),
    "not a checkpoint": (lambda project: torch.save({"weights": torch.ones(3)}, project / model_path("gen0")),
                         re.escape(f"is not a born-again checkpoint; {TEACHER_HINT}")),
    "missing": (lambda project: (project / model_path("gen0")).unlink(),
                re.escape("not found: it is made by stage teacher (dvc repro)")),
}


@pytest.mark.parametrize("damage, problem", TEACHER_FAULTS.values(), ids=TEACHER_FAULTS.keys())
def test_damaged_teacher_stops_the_student(project, damage, problem):
    damage(project)
    status, error = run_here(project, train_stage.main, ["gen1"])
    assert status == 1
    assert re.fullmatch(rf"error: checkpoint models/gen0\.pt {problem}\n", error), error
    assert_nothing_written(project, STUDENT_OUTPUTS)


def test_malicious_teacher_is_refused_by_a_real_stage_process(project, tmp_path):
    marker = tmp_path / "created-by-the-pickle"
    torch.save({"format": "ban-checkpoint-1", "state_dict": Planted(marker)}, project / model_path("gen0"))
    result = train(project, "gen1")
    assert result.returncode == 1
    assert result.stderr == ("error: checkpoint models/gen0.pt is unsafe: loading it would call "
                             f"io.open (refused, nothing was run); {TEACHER_HINT}\n")
    assert not marker.exists()
    assert_nothing_written(project, STUDENT_OUTPUTS)


PREPARED_FAULTS = {
    "random bytes": (
        lambda project: (project / PREPARED / "tensors.pt").write_bytes(b"\x00not tensors" * 50),
        "tensors.pt is corrupt or unsafe: it is not made of tensors and plain data only (nothing in it was "
        "run)"),
    "truncated": (
        lambda project: truncate(project / PREPARED / "tensors.pt"),
        "tensors.pt is corrupt (PytorchStreamReader failed reading zip archive: failed finding central "
        "directory)"),
    "meta not JSON": (
        lambda project: (project / PREPARED / "meta.json").write_text("{task: image"),
        "meta.json is corrupt (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    "a class without training examples": (
        lambda project: rewrite_tensors(project, "train", lambda y: torch.where(y == 3, 4, y)),
        "no training example of class '3'"),
    "a label out of range": (
        lambda project: rewrite_tensors(project, "test", lambda y: torch.where(y == 9, 10, y)),
        "test labels outside 0..9"),
    "a negative label": (
        lambda project: rewrite_tensors(project, "train", lambda y: torch.where(y == 0, -1, y)),
        "train labels outside 0..9"),
}


@pytest.mark.parametrize("damage, problem", PREPARED_FAULTS.values(), ids=PREPARED_FAULTS.keys())
def test_damaged_prepared_data_stops_the_teacher(project, damage, problem):
    damage(project)
    status, error = run_here(project, train_stage.main, ["gen0"])
    assert (status, error) == (1, f"error: prepared data in data/prepared/: {problem}: {PREPARED_HINT}\n")
    assert_nothing_written(project, ("preds/gen0.pt", "state", "metrics/gen0.json", "dvclive/gen0"))


def test_malicious_prepared_data_is_refused(project, tmp_path):
    marker = tmp_path / "created-by-the-pickle"
    torch.save({"train_x": Planted(marker)}, project / PREPARED / "tensors.pt")
    status, error = run_here(project, train_stage.main, ["gen0"])
    assert (status, error) == (1, "error: prepared data in data/prepared/: tensors.pt is unsafe: loading it "
                                  f"would call io.open (refused, nothing was run): {PREPARED_HINT}\n")
    assert not marker.exists()


def write_image_folder(root: Path, layout: dict[str, list[str]]) -> None:
    """One 4x4 grey image per class and split; ``layout`` maps a split to its classes."""
    for split, classes in layout.items():
        for name in classes:
            (root / split / name).mkdir(parents=True)
            Image.fromarray(np.full((4, 4), 100, dtype=np.uint8)).save(root / split / name / "a.png")


def test_image_folder_test_split_without_a_class_stops_prepare(tmp_path):
    images = tmp_path / "images"
    write_image_folder(images, {"train": ["ant", "bee", "cat"], "test": ["ant", "cat"]})
    write_params(tmp_path, merge(FAST, {"data": {"name": "imagefolder", "root": str(images)}}))
    status, error = run_here(tmp_path, prepare_stage.main, [])
    assert (status, error) == (1, f"error: train and test class folders differ in {images}/ "
                                  "(missing in test/: bee)\n")
    assert not (tmp_path / "data").exists()


no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without a usable CUDA device")


@no_cuda
def test_asking_for_cuda_without_a_usable_device_stops_the_stage(project):
    write_params(project, merge(FAST, {"train": {"device": "cuda"}}))
    status, error = run_here(project, train_stage.main, ["gen0"])
    assert (status, error) == (2, f"error: train.device: cuda cannot train here: {cuda_problem()}; use "
                                  "train.device: cpu (or auto)\n")
    assert_nothing_written(project, ("preds/gen0.pt", "state", "metrics/gen0.json", "dvclive/gen0"))


@no_cuda
def test_auto_says_in_the_first_line_which_device_and_why(project, capsys):
    write_params(project, merge(FAST, {"train": {"device": "auto"}}))
    assert run_here(project, train_stage.main, ["gen0"]) == (0, "")
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"train.device auto: cpu (cuda: {cuda_problem()})"

"""The headline study's preset (``presets/study-cifar10-32.yaml``): it validates, and a 1-epoch, 200-image
version of it runs end to end through ``dvc exp run`` on a small CIFAR-like image folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from project import ROOT, make_project, run, stages_run

from ban.core.config import params_from_mapping
from ban.validation.params_file import validate_everything

pytestmark = pytest.mark.slow  # real pipelines: processes, DVC, git

PRESET = ROOT / "presets/study-cifar10-32.yaml"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar_folder(root: Path, train: int = 30, test: int = 5) -> Path:
    """32x32 RGB JPEGs in the ImageFolder layout of the CIFAR-10 export, ``train``/``test`` per class."""
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("test", test)):
        for label, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for index in range(count):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) // 2 + label * 12  # some signal
                Image.fromarray(pixels.astype(np.uint8)).save(root / split / name / f"{index:04d}.jpg")
    return root


def test_the_preset_is_the_regime_it_states() -> None:
    params = params_from_mapping(yaml.safe_load(PRESET.read_text()))
    assert validate_everything(params) == "image"
    assert params.data.image_size == 32 and params.data.validation and params.data.train_subset
    assert params.model["arch"] == "resnet" and params.model["depth"] >= 14
    assert params.main_chain() == ["gen1", "gen2"] and params.ensemble_members() == ["gen1", "gen2"]
    assert params.generation_kd("control").mode == "none" and params.generation_kd("banl").label_weight > 0
    assert params.train.eval_every == params.train.epochs  # curves are not paid for: the last epoch only


def test_a_small_version_runs_end_to_end_through_dvc_exp_run(tmp_path: Path) -> None:
    images = write_cifar_folder(tmp_path / "cifar10")
    project = make_project(tmp_path / "project", fast=False, extra=("presets",))
    run(project, "python", "-m", "stages.preset", "study-cifar10-32")
    result = run(project, "dvc", "exp", "run", "-S", f"data.root={images}", "-S", "data.train_subset=200",
                 "-S", "data.validation=50", "-S", "train.epochs=1", "-S", "train.eval_every=1",
                 "-S", "model.depth=8", "-S", "model.width=4")  # the preset's chain, a tiny network
    assert stages_run(result.stdout) == ["prepare", "teacher", "student@gen1", "student@gen2",
                                         "student@banl", "student@control", "ensemble", "evaluate"]
    summary = json.loads((project / "metrics/summary.json").read_text())
    assert set(summary) == {"gen0", "gen1", "gen2", "banl", "control", "ens2"}
    for name in ("gen0", "gen1", "gen2", "banl", "control"):
        assert {"valid_error", "test_error", "train_error"} <= set(summary[name])
        assert summary[name]["epochs"] == 1
    shown = json.loads(run(project, "dvc", "exp", "show", "--json").stdout)
    assert len([e for baseline in shown for e in baseline.get("experiments") or []]) == 1

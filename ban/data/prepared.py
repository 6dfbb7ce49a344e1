"""The prepared-data format shared by every dataset: one tensor file plus a JSON header.

``data/prepared/tensors.pt`` holds a flat dict of tensors, loaded with
``weights_only=True`` so that a prepared file can never run code.
``data/prepared/meta.json`` says which task (``ban.tasks``) the tensors serve:

* image: ``{"task": "image", "name", "classes", "mean", "std", "shape": [C, H, W]}``
  with tensors ``train_x``/``test_x`` (uint8, N x C x H x W) and
  ``train_y``/``test_y`` (int64), and ``valid_x``/``valid_y`` when a validation split is held out.
* lm: ``{"task": "lm", "name", "vocab", "chars"}`` with int64 token streams
  ``train``/``valid``/``test`` and ``word_chars`` (int64, vocab x max word length).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ban.core.errors import DataError
from ban.core.files import describe_load_error, read_torch
from ban.tasks import TASKS

TENSORS_FILE = "tensors.pt"
META_FILE = "meta.json"


@dataclass
class Prepared:
    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    @property
    def task(self) -> str:
        return self.meta["task"]


def save_prepared(directory: str | Path, prepared: Prepared) -> None:
    """Write atomically: build in a sibling temp dir, then swap it in."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    staging.chmod(0o755)
    try:
        torch.save(prepared.tensors, staging / TENSORS_FILE)
        (staging / META_FILE).write_text(json.dumps(prepared.meta, indent=1) + "\n")
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def load_prepared(directory: str | Path) -> Prepared:
    """Load and sanity-check prepared data; any problem names the file and the fix."""
    directory = Path(directory)
    hint = "re-create it with `dvc repro prepare` (python -m stages.prepare)"
    meta_path, tensors_path = directory / META_FILE, directory / TENSORS_FILE
    if not meta_path.exists() or not tensors_path.exists():
        raise DataError(f"prepared data missing in {directory}/: {hint}")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"prepared data in {directory}/: {META_FILE} is corrupt ({error}): {hint}") from None
    try:
        tensors = read_torch(tensors_path, mmap=True)  # every rank maps the one file
    except Exception as error:
        raise DataError(f"prepared data in {directory}/: {TENSORS_FILE} is {describe_load_error(error)}: "
                        f"{hint}") from None
    task = meta.get("task") if isinstance(meta, dict) else None
    if task not in TASKS or not isinstance(tensors, dict):
        raise DataError(f"prepared data in {directory}/ has an unknown layout: {hint}")
    missing = [name for name in TASKS.get(task, "task").prepared_tensors if name not in tensors]
    if missing:
        raise DataError(f"prepared data in {directory}/ lacks {', '.join(missing)}: {hint}")
    problem = TASKS.get(task, "task").check_prepared(meta, tensors)
    if problem:
        raise DataError(f"prepared data in {directory}/: {problem}: {hint}")
    return Prepared(meta, tensors)

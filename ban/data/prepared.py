"""The prepared-data format shared by every dataset: tensor files plus a JSON header.

``data/prepared/tensors.pt`` holds a flat dict of tensors, loaded with
``weights_only=True`` so that a prepared file can never run code. Images (the ``*_x``
tensors of the image task) are each a NumPy ``.npy`` file of their own beside it
(``train_x.npy``, ...): written chunk by chunk without holding them whole, and mapped
into memory when read (``numpy.load(mmap_mode=...)``, no pickles), so a training run
reads only the pages it touches. ``data/prepared/meta.json`` says which task
(``ban.tasks``) the tensors serve:

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ban.core.errors import DataError
from ban.core.files import describe_load_error, read_torch
from ban.tasks import TASKS

TENSORS_FILE = "tensors.pt"
META_FILE = "meta.json"
ARRAY_SUFFIX = ".npy"
COPY_ROWS = 4096  # examples copied at a time into an array file: bounded extra memory


@dataclass
class Prepared:
    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    @property
    def task(self) -> str:
        return self.meta["task"]


def is_array(name: str, tensor: torch.Tensor) -> bool:
    """Images are stored as array files of their own (mappable, written in chunks); the rest in tensors.pt."""
    return name.endswith("_x") and tensor.dtype == torch.uint8 and tensor.dim() == 4


def prepared_files(directory: str | Path) -> list[Path]:
    """Every file of prepared data in ``directory``, in a fixed order (what a resume fingerprint reads)."""
    return sorted(path for path in Path(directory).iterdir() if path.is_file())


class ArrayWriter:
    """A uint8 ``.npy`` file written front to back, chunk after chunk, with plain writes: the written pages
    go to the page cache, not to the writing process's memory (a memory map would count them as its own)."""

    def __init__(self, path: Path, shape: tuple[int, ...]) -> None:
        self.path, self.shape, self.rows = path, shape, 0
        self.file = open(path, "wb")  # noqa: SIM115 - closed by close(), after the last chunk
        np.lib.format.write_array_header_1_0(
            self.file, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
                        "shape": shape})

    def write(self, chunk: np.ndarray) -> None:
        if chunk.dtype != np.uint8 or chunk.shape[1:] != self.shape[1:]:
            raise ValueError(f"{self.path.name}: chunk {chunk.dtype} {chunk.shape} does not fit {self.shape}")
        self.file.write(memoryview(np.ascontiguousarray(chunk)))  # no copy of a contiguous chunk
        self.rows += len(chunk)

    def close(self) -> None:
        self.file.close()
        if self.rows != self.shape[0]:
            raise ValueError(f"{self.path.name}: {self.rows} rows written of {self.shape[0]}")


class Staging:
    """A prepared-data directory under construction, next to its destination; see :func:`staged`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def array(self, name: str, shape: tuple[int, ...]) -> ArrayWriter:
        """The array file ``name.npy`` of ``shape``, to write in order (then ``close`` it)."""
        return ArrayWriter(self.path / f"{name}{ARRAY_SUFFIX}", shape)

    def finish(self, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """The small tensors and the header, written last: a directory without its header is incomplete."""
        torch.save(tensors, self.path / TENSORS_FILE)
        (self.path / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")


@contextmanager
def staged(directory: str | Path) -> Iterator[Staging]:
    """Build prepared data in a sibling temp dir, then swap it in: nothing half-written on failure."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    staging.chmod(0o755)
    try:
        yield Staging(staging)
        if not (staging / META_FILE).exists():
            raise RuntimeError("prepared data staged without its header (Staging.finish was not called)")
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def save_prepared(directory: str | Path, prepared: Prepared) -> None:
    """Write atomically: images as array files (copied a chunk at a time), the rest in tensors.pt."""
    with staged(directory) as staging:
        small = {}
        for name, tensor in prepared.tensors.items():
            if not is_array(name, tensor):
                small[name] = tensor
                continue
            array = staging.array(name, tuple(tensor.shape))
            for start in range(0, len(tensor), COPY_ROWS):
                array.write(tensor[start:start + COPY_ROWS].numpy())
            array.close()
        staging.finish(prepared.meta, small)


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
    for path in sorted(directory.glob(f"*{ARRAY_SUFFIX}")):
        tensors[path.stem] = map_array(path, f"prepared data in {directory}/: {path.name}", hint)
    missing = [name for name in TASKS.get(task, "task").prepared_tensors if name not in tensors]
    if missing:
        raise DataError(f"prepared data in {directory}/ lacks {', '.join(missing)}: {hint}")
    problem = TASKS.get(task, "task").check_prepared(meta, tensors)
    if problem:
        raise DataError(f"prepared data in {directory}/: {problem}: {hint}")
    return Prepared(meta, tensors)


def map_array(path: Path, where: str, hint: str) -> torch.Tensor:
    """An array file as a tensor over its memory map: pages are read when touched, and shared with every
    process that maps the file. Copy-on-write: the tensor is writable, the file never changes."""
    try:
        array = np.load(path, mmap_mode="c", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(f"{where} is corrupt ({str(error).splitlines()[0]}): {hint}") from None
    return torch.from_numpy(array)

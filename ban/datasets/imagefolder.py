"""The user's own images in torchvision's ImageFolder layout: ``<root>/train/<class>/<image>`` and
``<root>/test/<class>/<image>`` (or ``<root>/val/...``, ImageNet's layout, when there is no ``test/``).

Folders are discovered by ``torchvision.datasets.ImageFolder`` (same class order, same accepted
extensions). The headers come first, to choose one channel count and size for every image before
any pixel is decoded; then the pixels are decoded a chunk at a time (in threads: PIL releases the
GIL while it decodes and resizes) and appended to the prepared array files, so the memory a
prepare needs does not grow with the number of images (only the list of file names does).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from PIL import Image

from ban.core.config import DataConfig, Params
from ban.core.errors import DataError
from ban.data.images import channel_histograms, image_meta, stats_of_histograms, training_splits
from ban.data.prepared import Prepared, Staging, load_prepared, staged
from ban.datasets import DATASETS, DataFacts, Dataset
from ban.datasets.facts import image_facts
from ban.training.progress import Progress, epoch_progress

if TYPE_CHECKING:
    from torchvision.datasets import ImageFolder

SPLITS = ("train", "test")
TEST_FOLDERS = ("test", "val")  # the test split's folder: the first that exists
# Modes stored without colour: a dataset made only of these keeps a single channel.
GRAYSCALE_MODES = frozenset({"1", "L", "LA"})
_UNREADABLE = (OSError, ValueError, Image.DecompressionBombError)
CHUNK = 128  # images decoded before they are written: the bound on a prepare's pixel memory


def write(data: DataConfig, directory: Path) -> None:
    """Prepare the folder into ``directory``: split, decode and write a chunk at a time, with progress."""
    root = Path(data.root)
    folders = {split: _discover(root, split) for split in SPLITS}
    _check_same_classes(root, folders["train"].classes, folders["test"].classes)
    samples = {split: folders[split].samples for split in SPLITS}
    mode, size = _choose_format([path for split in SPLITS for path, _ in samples[split]], data.image_size)
    classes = folders["train"].classes
    train_labels = torch.tensor([label for _, label in samples["train"]], dtype=torch.int64)
    train, valid = training_splits(train_labels, len(classes), data)
    outputs = {"train": [samples["train"][i] for i in train.tolist()]}
    if valid is not None:
        outputs["valid"] = [samples["train"][i] for i in valid.tolist()]
    outputs["test"] = samples["test"]
    channels = 1 if mode == "L" else 3
    chunks = sum(-(-len(entries) // CHUNK) for entries in outputs.values())
    progress = epoch_progress(f"prepare imagefolder ({size[0]}x{size[1]})", chunks, "img", stream=sys.stderr)
    with staged(directory) as staging:
        labels, histograms = {}, None
        for split, entries in outputs.items():
            counts = _write_pixels(staging, f"{split}_x", [path for path, _ in entries], mode, size, progress)
            labels[f"{split}_y"] = torch.tensor([label for _, label in entries], dtype=torch.int64)
            histograms = counts if split == "train" else histograms
        progress.close()
        mean, std = stats_of_histograms(histograms)
        staging.finish(image_meta("imagefolder", classes, mean, std, [channels, size[1], size[0]]), labels)


def prepare(data: DataConfig) -> Prepared:
    """The prepared tensors in memory (written to a temporary directory and read back): for small folders."""
    with tempfile.TemporaryDirectory() as scratch:
        write(data, Path(scratch) / "prepared")
        prepared = load_prepared(Path(scratch) / "prepared")
        return Prepared(prepared.meta, {name: tensor.clone() for name, tensor in prepared.tensors.items()})


def facts(params: Params) -> DataFacts:
    """Costed as a CIFAR-10 export (10 classes, 50,000 + 10,000 images) at ``data.image_size``."""
    size = params.data.image_size or 32
    return image_facts(params.data, (3, size, size), classes=10, train=50_000, test=10_000, assumed=True)


def _choose_format(paths: list[str], image_size: int | None) -> tuple[str, tuple[int, int]]:
    """The mode (L when every image is grayscale, else RGB) and (width, height) of every prepared image.

    Without ``data.image_size`` every image must already share one size, so every header is read;
    with it, reading stops at the first colour image (ImageNet's first file).
    """
    mode, first = "L", None
    for path in map(Path, paths):
        entry = _read_header(path)
        if entry.mode not in GRAYSCALE_MODES:
            mode = "RGB"
            if image_size:
                break
        if not image_size:
            first = first or entry
            if entry.size != first.size:
                raise DataError(
                    f"images differ in size ({first.path} is {_format(first.size)}, {entry.path} is "
                    f"{_format(entry.size)}): set data.image_size to resize them all to one square size"
                )
    return mode, (image_size, image_size) if image_size else first.size


class _Entry(NamedTuple):
    path: Path
    mode: str
    size: tuple[int, int]  # (width, height), as PIL reports it


def missing(data: DataConfig, root: Path) -> str | None:
    absent = [f"{root / split}/" for split in SPLITS if not _split_folder(root, split).is_dir()]
    return f"{' and '.join(absent)} not found" if absent else None


def _split_folder(root: Path, split: str) -> Path:
    """``train/``; for the test split ``test/``, or ``val/`` when only that exists (ImageNet)."""
    if split == "test":
        return next((root / name for name in TEST_FOLDERS if (root / name).is_dir()), root / "test")
    return root / split


def _discover(root: Path, split: str) -> ImageFolder:
    folder = _split_folder(root, split)
    if not folder.is_dir():
        raise DataError(
            f"{folder}/ not found: imagefolder data needs {root}/train/<class>/<images> "
            f"and {root}/test/<class>/<images> (or {root}/val/<class>/<images>)"
        )
    from torchvision.datasets import ImageFolder  # here, not at import: torchvision takes seconds to load

    try:
        return ImageFolder(str(folder))
    except FileNotFoundError as error:  # no class folder, or a class folder without images
        raise DataError(f"{folder}/: {error}") from None


def _check_same_classes(root: Path, train: list[str], test: list[str]) -> None:
    """Labels are class indices in sorted order, so both splits need exactly the same classes."""
    if train == test:
        return
    missing = {
        "test": sorted(set(train) - set(test)),
        "train": sorted(set(test) - set(train)),
    }
    details = "; ".join(
        f"missing in {split}/: {', '.join(names)}" for split, names in missing.items() if names
    )
    raise DataError(f"train and test class folders differ in {root}/ ({details})")


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn any decoding failure into one message that names the file."""
    try:
        yield
    except _UNREADABLE as error:
        raise DataError(f"cannot read image {path}: {error}") from None


def _read_header(path: Path) -> _Entry:
    """Mode and size come from the header alone: no pixel is decoded here."""
    with _reading(path), Image.open(path) as image:
        return _Entry(path, image.mode, image.size)


def _format(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _write_pixels(staging: Staging, name: str, paths: list[str], mode: str, size: tuple[int, int],
                  progress: Progress) -> torch.Tensor:
    """Decode ``paths`` a chunk at a time into the array file ``name``; the chunks' [C, 256] histograms."""
    channels = 1 if mode == "L" else 3
    width, height = size
    array = staging.array(name, (len(paths), channels, height, width))
    histograms = torch.zeros(channels, 256, dtype=torch.int64)
    with ThreadPoolExecutor(max_workers=len(os.sched_getaffinity(0))) as pool:
        for start in range(0, len(paths), CHUNK):
            pixels = list(pool.map(lambda path: _decode(Path(path), mode, size), paths[start:start + CHUNK]))
            stacked = np.stack(pixels)
            chunk = stacked[:, np.newaxis] if channels == 1 else stacked.transpose(0, 3, 1, 2)
            array.write(chunk)
            histograms += channel_histograms(torch.from_numpy(chunk))
            progress.update(len(chunk))
    array.close()
    return histograms


def _decode(path: Path, mode: str, size: tuple[int, int]) -> np.ndarray:
    """H x W (grayscale) or H x W x 3 (RGB) uint8 pixels of one image at ``size``.

    An image of another size gets its shorter side resized to the square's side, then the centre
    square is kept: torchvision's ``Resize(side)`` and ``CenterCrop(side)``, on the PIL image.
    """
    with _reading(path), Image.open(path) as image:
        converted = image.convert(mode)
        if converted.size != size:
            from torchvision.transforms import functional  # loaded with ImageFolder, before any decoding

            converted = functional.center_crop(functional.resize(converted, size[1]), [size[1], size[0]])
        return np.asarray(converted, dtype=np.uint8)


DATASETS.register(Dataset(name="imagefolder", task="image",
                          reads="train/<class>/* and test/<class>/* (or val/<class>/*) images",
                          prepare=prepare, facts=facts, missing=missing, write=write))

"""The user's own images in torchvision's ImageFolder layout: ``<root>/{train,test}/<class>/<image>``.

Folders are discovered by ``torchvision.datasets.ImageFolder`` (same class order,
same accepted extensions); pixels are read with PIL in two passes: the headers
first, to choose one channel count and size for every image before any pixel is
decoded, then the pixels straight into one preallocated array per split.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from PIL import Image

from ban.core.config import DataConfig, Params
from ban.core.errors import DataError
from ban.data.images import finish_images
from ban.data.prepared import Prepared
from ban.datasets import DATASETS, DataFacts, Dataset
from ban.datasets.facts import image_facts

if TYPE_CHECKING:
    from torchvision.datasets import ImageFolder

SPLITS = ("train", "test")
# Modes stored without colour: a dataset made only of these keeps a single channel.
GRAYSCALE_MODES = frozenset({"1", "L", "LA"})
_UNREADABLE = (OSError, ValueError, Image.DecompressionBombError)


def prepare(data: DataConfig) -> Prepared:
    classes, tensors = load_image_folder(data.root, data.image_size)
    return finish_images("imagefolder", classes, tensors, data)


def facts(params: Params) -> DataFacts:
    """Costed as a CIFAR-10 export (10 classes, 50,000 + 10,000 images) at ``data.image_size``."""
    size = params.data.image_size or 32
    return image_facts(params.data, (3, size, size), classes=10, train=50_000, test=10_000, assumed=True)


def load_image_folder(root: str | Path, image_size: int | None) -> tuple[list[str], dict[str, torch.Tensor]]:
    """Read train and test images as uint8 N x C x H x W with int64 labels.

    Channels: 1 when every image (both splits) is grayscale, else 3 (RGB).
    ``image_size`` resizes every image to a square of that side (aspect ratio
    is not kept: crop beforehand where it matters); without it all images must
    already share one size.
    """
    root = Path(root)
    folders = {split: _discover(root, split) for split in SPLITS}
    _check_same_classes(root, folders["train"].classes, folders["test"].classes)
    entries = {
        split: [_read_header(Path(path), label) for path, label in folders[split].samples] for split in SPLITS
    }
    every_entry = entries["train"] + entries["test"]
    mode = "L" if all(entry.mode in GRAYSCALE_MODES for entry in every_entry) else "RGB"
    size = (image_size, image_size) if image_size else _common_size(every_entry)
    tensors: dict[str, torch.Tensor] = {}
    for split in SPLITS:
        tensors[f"{split}_x"] = _read_pixels([entry.path for entry in entries[split]], mode, size)
        tensors[f"{split}_y"] = torch.tensor([entry.label for entry in entries[split]], dtype=torch.int64)
    return folders["train"].classes, tensors


class _Entry(NamedTuple):
    path: Path
    label: int
    mode: str
    size: tuple[int, int]  # (width, height), as PIL reports it


def missing(data: DataConfig, root: Path) -> str | None:
    absent = [f"{root / split}/" for split in ("train", "test") if not (root / split).is_dir()]
    return f"{' and '.join(absent)} not found" if absent else None


def _discover(root: Path, split: str) -> ImageFolder:
    folder = root / split
    if not folder.is_dir():
        raise DataError(
            f"{folder}/ not found: imagefolder data needs {root}/train/<class>/<images> "
            f"and {root}/test/<class>/<images>"
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


def _read_header(path: Path, label: int) -> _Entry:
    """Mode and size come from the header alone: no pixel is decoded here."""
    with _reading(path), Image.open(path) as image:
        return _Entry(path, label, image.mode, image.size)


def _common_size(entries: list[_Entry]) -> tuple[int, int]:
    first = entries[0]
    for entry in entries:
        if entry.size != first.size:
            raise DataError(
                f"images differ in size ({first.path} is {_format(first.size)}, {entry.path} is "
                f"{_format(entry.size)}): set data.image_size to resize them all to one square size"
            )
    return first.size


def _format(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _read_pixels(paths: list[Path], mode: str, size: tuple[int, int]) -> torch.Tensor:
    channels = 1 if mode == "L" else 3
    width, height = size
    images = np.empty((len(paths), channels, height, width), dtype=np.uint8)
    for index, path in enumerate(paths):
        pixels = _decode(path, mode, size)
        images[index] = pixels[np.newaxis] if channels == 1 else pixels.transpose(2, 0, 1)
    return torch.from_numpy(images)


def _decode(path: Path, mode: str, size: tuple[int, int]) -> np.ndarray:
    """H x W (grayscale) or H x W x 3 (RGB) uint8 pixels of one image."""
    with _reading(path), Image.open(path) as image:
        converted = image.convert(mode)
        if converted.size != size:
            converted = converted.resize(size, Image.Resampling.BILINEAR)
        return np.asarray(converted, dtype=np.uint8)


DATASETS.register(Dataset(name="imagefolder", task="image", reads="train/<class>/* and test/<class>/* images",
                          prepare=prepare, facts=facts, missing=missing))

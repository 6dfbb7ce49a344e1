"""``cifar10`` and ``cifar100``: the standard Python versions, read by torchvision's own dataset classes.

``data.root`` holds ``cifar-10-batches-py/`` or ``cifar-100-python/``; ``data.download: true``
fetches them there. ``data.verify: false`` skips the checksums of the extracted files, for files
written by the user in the same layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ban.core.config import DataConfig
from ban.core.errors import DataError
from ban.data.images import Tensors, check_native_size, finish_images
from ban.data.prepared import Prepared
from ban.datasets import DATASETS, Dataset
from ban.datasets.facts import image_facts

if TYPE_CHECKING:
    from torchvision.datasets import CIFAR10

# The folders torchvision's classes read; torchvision itself is imported only to read them (seconds).
BASE_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
TRAIN_IMAGES, TEST_IMAGES = 50_000, 10_000


def cifar_class(name: str) -> type[CIFAR10]:
    from torchvision.datasets import CIFAR10, CIFAR100

    return {"cifar10": CIFAR10, "cifar100": CIFAR100}[name]


def prepare(data: DataConfig) -> Prepared:
    classes, tensors = read_cifar(data.name, Path(data.root), download=data.download, verify=data.verify)
    return finish_images(data.name, classes, tensors, data)


def read_cifar(name: str, root: Path, *, download: bool, verify: bool) -> tuple[list[str], Tensors]:
    """Read (and, if asked, download) CIFAR through torchvision's own dataset class."""
    dataset_class = cifar_class(name) if verify else _without_checksums(cifar_class(name))
    tensors: Tensors = {}
    classes: list[str] = []
    for split in ("train", "test"):
        try:
            dataset = dataset_class(str(root), train=split == "train", download=download)
        except Exception as error:  # torchvision reports missing, corrupt and undownloadable files alike
            raise DataError(_cifar_error(dataset_class, root, download, verify, error)) from None
        tensors[f"{split}_x"] = torch.from_numpy(dataset.data).permute(0, 3, 1, 2)  # stored N x H x W x C
        tensors[f"{split}_y"] = torch.tensor(dataset.targets, dtype=torch.int64)
        classes = list(dataset.classes)
    return classes, tensors


def _without_checksums(dataset_class: type[CIFAR10]) -> type[CIFAR10]:
    """The same torchvision reader with the md5 of every extracted file set to None.

    torchvision's ``check_integrity(path, md5=None)`` then only checks that the
    file exists, so files written by the user in the official layout load with
    the official code path; the archive checksum of a download is kept.
    """
    return type(
        dataset_class.__name__,
        (dataset_class,),
        {
            "train_list": [[file, None] for file, _ in dataset_class.train_list],
            "test_list": [[file, None] for file, _ in dataset_class.test_list],
            "meta": {**dataset_class.meta, "md5": None},
        },
    )


def _cifar_error(
    dataset_class: type[CIFAR10], root: Path, download: bool, verify: bool, error: Exception
) -> str:
    """Say which files belong where, and how to get them."""
    name, folder = dataset_class.__name__, root / dataset_class.base_folder
    fetch = f"download {dataset_class.url} and extract it into {root}/"
    reason = f"{type(error).__name__}: {error}"
    if download:
        return f"could not download or read {name} in {root}/ ({reason}): {fetch} by hand"
    absent = _absent_files(dataset_class, root)
    if absent:
        return f"{name} not found: {folder}/ lacks {', '.join(absent)}; {fetch}, or set data.download: true"
    if verify:
        return (
            f"{name} files in {folder}/ do not match the official checksums: {fetch} again "
            "(data.verify: false reads files of your own in this layout)"
        )
    return f"{name} files in {folder}/ are unreadable ({reason}): {fetch} again"


def missing(data: DataConfig, root: Path) -> str | None:
    if data.download:
        return None
    dataset_class = cifar_class(data.name)
    absent = _absent_files(dataset_class, root)
    return f"{root / dataset_class.base_folder}/ lacks {', '.join(absent)}" if absent else None


def _absent_files(dataset_class: type[CIFAR10], root: Path) -> list[str]:
    folder = root / dataset_class.base_folder
    return [file for file in _cifar_files(dataset_class) if not (folder / file).is_file()]


def _cifar_files(dataset_class: type[CIFAR10]) -> list[str]:
    """The extracted files torchvision reads: training batches, test batch, class names."""
    return [file for file, _ in dataset_class.train_list + dataset_class.test_list] + [
        dataset_class.meta["filename"]
    ]


for _name, _classes in (("cifar10", 10), ("cifar100", 100)):
    DATASETS.register(Dataset(
        name=_name, task="image", reads=f"{BASE_FOLDERS[_name]}/ (the Python version)",
        prepare=prepare,
        facts=lambda params, classes=_classes: image_facts(params.data, (3, 32, 32), classes=classes,
                                                            train=TRAIN_IMAGES, test=TEST_IMAGES),
        check=lambda data, name=_name: check_native_size(name, 32, data), missing=missing))

"""Image datasets turned into the prepared format: scikit-learn's digits, CIFAR-10/100, the user's folders.

Each loader returns class names and the four tensors ``train_x``, ``train_y``,
``test_x``, ``test_y``; :func:`prepare_images` then takes the optional training
subset and computes the normalisation statistics on what remains, so that the
statistics always describe the images the networks are trained on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torchvision.datasets import CIFAR10, CIFAR100

from ban.data.imagefolder import load_image_folder
from ban.data.prepared import Prepared
from ban.errors import ConfigError, DataError

IMAGE_DATASETS = ("digits", "cifar10", "cifar100", "imagefolder")
# The built-in datasets keep the square size they ship with: data.image_size may only repeat it.
NATIVE_SIZES = {"digits": 8, "cifar10": 32, "cifar100": 32}
CIFAR_CLASSES: dict[str, type[CIFAR10]] = {"cifar10": CIFAR10, "cifar100": CIFAR100}
DIGITS_MAX = 16  # each digits pixel counts the inked pixels of a 4x4 block: values 0..16

Tensors = dict[str, torch.Tensor]


def prepare_images(
    name: str,
    root: str | Path,
    *,
    download: bool,
    train_subset: int | None,
    image_size: int | None,
    seed: int,
    test_fraction: float = 0.25,
    verify: bool = True,
) -> Prepared:
    """Load dataset ``name`` into contiguous uint8 N x C x H x W images and int64 labels.

    ``root`` holds the CIFAR files or the image folders (digits ship with
    scikit-learn). ``test_fraction`` only applies to digits, the others come
    with their own test split. ``verify: false`` skips the checksums of the
    CIFAR files, for files written in the same layout by the user.
    """
    _check_name(name)
    _check_image_size(name, image_size)
    if name == "digits":
        classes, tensors = _load_digits(seed, test_fraction)
    elif name == "imagefolder":
        classes, tensors = load_image_folder(root, image_size)
    else:
        classes, tensors = _load_cifar(name, Path(root), download=download, verify=verify)
    if train_subset is not None:
        keep = stratified_subset(tensors["train_y"], train_subset, seed)
        tensors["train_x"], tensors["train_y"] = tensors["train_x"][keep], tensors["train_y"][keep]
    tensors = {key: value.contiguous() for key, value in tensors.items()}
    mean, std = channel_stats(tensors["train_x"])
    shape = list(tensors["train_x"].shape[1:])
    meta = {"task": "image", "name": name, "classes": classes, "mean": mean, "std": std, "shape": shape}
    return Prepared(meta, tensors)


def stratified_subset(labels: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """Sorted indices of ``size`` examples that keep the class balance of ``labels``.

    Each class gets the floor or the ceiling of its proportional share: the
    floors first, then one more for the largest remainders (ties go to the
    lower class), so the total is exact. Which examples are taken is seeded.
    """
    values = labels.numpy()
    classes, counts = np.unique(values, return_counts=True)
    total = len(values)
    if isinstance(size, bool) or not isinstance(size, int) or not len(classes) <= size <= total:
        raise ConfigError(
            f"data.train_subset must be null or an integer from {len(classes)} (the number of classes) "
            f"to {total} (the training set size), got {size!r}"
        )
    quotas = counts * size // total
    remainders = counts * size % total
    quotas[np.argsort(-remainders, kind="stable")[: size - quotas.sum()]] += 1
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(values == label), size=quota, replace=False)
        for label, quota in zip(classes, quotas, strict=True)
    ]
    return torch.from_numpy(np.sort(np.concatenate(chosen)))


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and (population) std in [0, 1] units.

    Computed from a 256-bin histogram per channel: exact in float64 and
    without a float copy of the images (CIFAR-10 would need 1.2 GB).
    """
    levels = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for channel in images.unbind(1):
        weights = torch.bincount(channel.flatten(), minlength=256).double()
        weights /= weights.sum()
        mean = (weights * levels).sum()
        means.append(mean.item())
        stds.append((weights * (levels - mean) ** 2).sum().sqrt().item())
    return means, stds


def _check_name(name: str) -> None:
    if name not in IMAGE_DATASETS:
        raise ConfigError(
            f"data.name: unknown image dataset {name!r}; choose one of {', '.join(IMAGE_DATASETS)}"
        )


def _check_image_size(name: str, image_size: int | None) -> None:
    if image_size is None:
        return
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ConfigError(f"data.image_size must be null or a positive integer, got {image_size!r}")
    native = NATIVE_SIZES.get(name)
    if native is not None and image_size != native:
        raise ConfigError(
            f"data.image_size: {name} images are {native}x{native} and are not resized; "
            "set it to null (resizing applies to data.name: imagefolder)"
        )


def _load_digits(seed: int, test_fraction: float) -> tuple[list[str], Tensors]:
    """scikit-learn's bundled 8x8 digits, scaled to 0..255, with a seeded stratified split."""
    if not 0 < test_fraction < 1:
        raise ConfigError(f"data.test_fraction must be between 0 and 1 (exclusive), got {test_fraction!r}")
    digits = load_digits()
    images = torch.from_numpy(np.rint(digits.images * 255 / DIGITS_MAX).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    try:
        train, test = train_test_split(
            np.arange(len(labels)), test_size=test_fraction, stratify=digits.target, random_state=seed
        )
    except ValueError as error:  # a split too small to hold every class
        raise ConfigError(f"data.test_fraction {test_fraction!r}: {error}") from None
    train, test = torch.from_numpy(train), torch.from_numpy(test)
    tensors = {
        "train_x": images[train],
        "train_y": labels[train],
        "test_x": images[test],
        "test_y": labels[test],
    }
    return [str(label) for label in digits.target_names], tensors


def _load_cifar(name: str, root: Path, *, download: bool, verify: bool) -> tuple[list[str], Tensors]:
    """Read (and, if asked, download) CIFAR through torchvision's own dataset class."""
    dataset_class = CIFAR_CLASSES[name] if verify else _without_checksums(CIFAR_CLASSES[name])
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
    missing = [file for file in _cifar_files(dataset_class) if not (folder / file).is_file()]
    if missing:
        return f"{name} not found: {folder}/ lacks {', '.join(missing)}; {fetch}, or set data.download: true"
    if verify:
        return (
            f"{name} files in {folder}/ do not match the official checksums: {fetch} again "
            "(data.verify: false reads files of your own in this layout)"
        )
    return f"{name} files in {folder}/ are unreadable ({reason}): {fetch} again"


def _cifar_files(dataset_class: type[CIFAR10]) -> list[str]:
    """The extracted files torchvision reads: training batches, test batch, class names."""
    return [file for file, _ in dataset_class.train_list + dataset_class.test_list] + [
        dataset_class.meta["filename"]
    ]

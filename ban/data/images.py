"""What every image dataset does after reading its files: hold out a validation split, take the
training subset, and compute the normalisation statistics on what remains to be trained on.

Readers (``ban/datasets/``) return class names and the four tensors ``train_x``, ``train_y``,
``test_x``, ``test_y`` (uint8 N x C x H x W, int64); :func:`finish_images` turns them into the
prepared format.
"""

from __future__ import annotations

import numpy as np
import torch

from ban.core.config import DataConfig
from ban.core.errors import ConfigError
from ban.data.prepared import Prepared

Tensors = dict[str, torch.Tensor]
VALIDATION_STREAM = 1  # the validation split draws from its own random stream of data.seed


def finish_images(name: str, classes: list[str], tensors: Tensors, data: DataConfig) -> Prepared:
    """Validation split (``data.validation`` images), then the training subset, then the statistics.

    Both are class-stratified and seeded by ``data.seed``; the test split is never touched, and
    the validation images are never trained on.
    """
    train, valid = training_splits(tensors["train_y"], len(classes), data)
    if valid is not None:
        tensors["valid_x"], tensors["valid_y"] = tensors["train_x"][valid], tensors["train_y"][valid]
    tensors["train_x"], tensors["train_y"] = tensors["train_x"][train], tensors["train_y"][train]
    tensors = {key: value.contiguous() for key, value in tensors.items()}
    mean, std = channel_stats(tensors["train_x"])
    return Prepared(image_meta(name, classes, mean, std, list(tensors["train_x"].shape[1:])), tensors)


def image_meta(name: str, classes: list[str], mean: list[float], std: list[float],
               shape: list[int]) -> dict[str, object]:
    return {"task": "image", "name": name, "classes": classes, "mean": mean, "std": std, "shape": shape}


def training_splits(labels: torch.Tensor, num_classes: int,
                    data: DataConfig) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Indices into the training images: those trained on, and the validation split (None: none held out).

    Decided from the labels alone, so a reader can choose which images to decode before decoding any.
    """
    remaining = torch.arange(len(labels))
    valid = None
    if data.validation is not None:
        held = torch.zeros(len(labels), dtype=torch.bool)
        held[stratified_subset(labels, data.validation, [data.seed, VALIDATION_STREAM],
                               "data.validation", leave=num_classes)] = True
        valid, remaining = remaining[held], remaining[~held]
    if data.train_subset is not None:
        remaining = remaining[stratified_subset(labels[remaining], data.train_subset, data.seed,
                                                "data.train_subset")]
    return remaining, valid


def stratified_subset(labels: torch.Tensor, size: int, seed: int | list[int], key: str,
                      leave: int = 0) -> torch.Tensor:
    """Sorted indices of ``size`` examples that keep the class balance of ``labels``.

    Each class gets the floor or the ceiling of its proportional share: the floors first, then
    one more for the largest remainders (ties go to the lower class), so the total is exact.
    Which examples are taken is seeded. ``leave`` examples must remain outside the subset
    (a validation split must leave every class something to train on).
    """
    values = labels.numpy()
    classes, counts = np.unique(values, return_counts=True)
    total = len(values)
    if isinstance(size, bool) or not isinstance(size, int) or not len(classes) <= size <= total - leave:
        raise ConfigError(f"{key} must be null or an integer from {len(classes)} (the number of classes) "
                          f"to {total - leave}, got {size!r}")
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
    return stats_of_histograms(channel_histograms(images))


def channel_histograms(images: torch.Tensor) -> torch.Tensor:
    """[C, 256] counts of each pixel value per channel; sums of chunks' histograms are the whole's."""
    return torch.stack([torch.bincount(channel.flatten(), minlength=256) for channel in images.unbind(1)])


def stats_of_histograms(histograms: torch.Tensor) -> tuple[list[float], list[float]]:
    levels = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for counts in histograms:
        weights = counts.double() / counts.sum()
        mean = (weights * levels).sum()
        means.append(mean.item())
        stds.append((weights * (levels - mean) ** 2).sum().sqrt().item())
    return means, stds


def check_native_size(name: str, native: int, data: DataConfig) -> None:
    """Built-in datasets keep the square size they ship with: ``data.image_size`` may only repeat it."""
    if data.image_size is not None and data.image_size != native:
        raise ConfigError(f"data.image_size: {name} images are {native}x{native} and are not resized; "
                          "set it to null (resizing applies to data.name: imagefolder)")

"""``digits``: scikit-learn's bundled 8x8 handwritten digits, the embedded default (no download, no files)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ban.core.config import DataConfig, Params
from ban.core.errors import ConfigError, import_optional
from ban.data.images import check_native_size, finish_images
from ban.data.prepared import Prepared
from ban.datasets import DATASETS, DataFacts, Dataset
from ban.datasets.facts import image_facts

DIGITS_MAX = 16  # each digits pixel counts the inked pixels of a 4x4 block: values 0..16
IMAGES = 1_797


def prepare(data: DataConfig) -> Prepared:
    """The images scaled to 0..255, with a seeded stratified test split of ``data.test_fraction``."""
    # here, not at import: scikit-learn takes seconds to load
    datasets = import_optional("sklearn.datasets", "digits", "the digits dataset (scikit-learn's copy)")
    selection = import_optional("sklearn.model_selection", "digits", "the digits dataset's split")

    digits = datasets.load_digits()
    images = torch.from_numpy(np.rint(digits.images * 255 / DIGITS_MAX).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    try:
        train, test = selection.train_test_split(np.arange(len(labels)), test_size=data.test_fraction,
                                                 stratify=digits.target, random_state=data.seed)
    except ValueError as error:  # a split too small to hold every class
        raise ConfigError(f"data.test_fraction {data.test_fraction!r}: {error}") from None
    train, test = torch.from_numpy(train), torch.from_numpy(test)
    tensors = {"train_x": images[train], "train_y": labels[train], "test_x": images[test],
               "test_y": labels[test]}
    return finish_images("digits", [str(label) for label in digits.target_names], tensors, data)


def facts(params: Params) -> DataFacts:
    test = math.ceil(IMAGES * params.data.test_fraction)
    return image_facts(params.data, (1, 8, 8), classes=10, train=IMAGES - test, test=test)


def check(data: DataConfig) -> None:
    check_native_size("digits", 8, data)


DATASETS.register(Dataset(name="digits", task="image", reads="nothing: the digits ship with scikit-learn",
                          prepare=prepare, facts=facts, check=check))

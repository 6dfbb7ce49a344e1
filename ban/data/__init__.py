"""Datasets: preparation into compact tensors, and the prepared format itself."""

from __future__ import annotations

from ban.config import DATASETS, DataConfig
from ban.data.prepared import Prepared


def prepare_dataset(data: DataConfig) -> Prepared:
    """Read (and, when asked, download) ``data.name`` into the prepared format."""
    if DATASETS[data.name] == "image":
        from ban.data.images import prepare_images

        return prepare_images(data.name, data.root, download=data.download, train_subset=data.train_subset,
                              image_size=data.image_size, seed=data.seed, test_fraction=data.test_fraction,
                              verify=data.verify)
    from ban.data.text import prepare_corpus

    return prepare_corpus(data.name, data.root, download=data.download, train_tokens=data.train_subset)

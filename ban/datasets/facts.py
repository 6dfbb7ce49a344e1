"""Cost facts shared by image datasets: the examples trained on and evaluated, from the data settings."""

from __future__ import annotations

from ban.core.config import DataConfig
from ban.datasets import DataFacts


def image_facts(data: DataConfig, shape: tuple[int, int, int], *, classes: int, train: int,
                test: int, assumed: bool = False) -> DataFacts:
    """``train`` and ``test`` are the published split sizes; the validation split comes out of ``train``."""
    validation = data.validation or 0
    return DataFacts(shape, {"in_channels": shape[0], "num_classes": classes, "image_size": shape[1]},
                     data.train_subset or train - validation, test + validation, assumed)

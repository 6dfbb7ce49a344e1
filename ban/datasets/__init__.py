"""Datasets (``data.name``): each module of this package registers the datasets it reads.

A dataset declares its task (``ban.tasks``), how it is prepared from ``data.root`` into the
prepared format, the params it refuses, and the facts cost estimates need without reading it
(example shape, published sizes). The ``prepare`` stage is the only stage that imports this
package: the train stages read the prepared data and never depend on how it was made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ban.core.config import DataConfig, Params
from ban.core.registry import Registry
from ban.data.prepared import Prepared, save_prepared
from ban.tasks import check_storage


@dataclass(frozen=True)
class DataFacts:
    """What building and costing a network needs to know of a dataset, without reading it."""

    shape: tuple[int, ...]  # one example: C x H x W, or (tokens,) for one language-model window
    data_arguments: dict[str, Any]  # what network builders take from the data (classes, vocabulary)
    train_examples: int  # images or tokens per epoch
    eval_examples: int  # evaluated at each evaluation
    assumed: bool = False  # costed from assumptions (the user's own data, unread): checks skip it


def accept(data: DataConfig) -> None:
    """The params check of a dataset that accepts every setting."""


def nothing_to_read(data: DataConfig, root: Path) -> str | None:
    """The data check of a dataset that reads no file."""
    return None


@dataclass(frozen=True)
class Dataset:
    name: str
    task: str  # a name in ban.tasks
    reads: str  # what it reads from data.root, for listings
    prepare: Callable[[DataConfig], Prepared]
    facts: Callable[[Params], DataFacts | None]  # None: sizes unknown until read (the user's own data)
    check: Callable[[DataConfig], None] = accept  # ConfigError naming the data.* key it refuses
    # what of its files ``root`` (data.root) lacks, None when nothing (or a download fetches it):
    # checked before a study starts, where reading them would only fail in its jobs
    missing: Callable[[DataConfig, Path], str | None] = nothing_to_read
    # writes the prepared files into a directory itself (in chunks, with bounded memory); None: the
    # tensors ``prepare`` returns are saved
    write: Callable[[DataConfig, Path], None] | None = None


DATASETS: Registry[Dataset] = Registry("dataset", "ban.datasets", by_name=True)


def dataset_of(data: DataConfig) -> Dataset:
    """The registered dataset ``data.name``, after its own check of the ``data`` settings."""
    dataset = DATASETS.get(data.name, "data.name")
    dataset.check(data)
    check_storage(data.storage, dataset.task)
    return dataset


def prepare_dataset(data: DataConfig) -> Prepared:
    """Read (and, when asked, download) ``data.name`` into the prepared format."""
    return dataset_of(data).prepare(data)


def write_prepared(data: DataConfig, directory: Path) -> None:
    """Prepare ``data.name`` into ``directory`` (replaced whole, or left as it was on failure)."""
    dataset = dataset_of(data)
    if dataset.write is not None:
        dataset.write(data, directory)
    else:
        save_prepared(directory, dataset.prepare(data))

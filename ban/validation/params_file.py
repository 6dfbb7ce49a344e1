"""Every check of a params file at once, for the ``validate`` stage and the tools that look at a chain
without running its stages (presets, the study launcher): the dataset's and the train stages'."""

from __future__ import annotations

import torch

from ban.core.config import Params
from ban.core.imports import is_import_path
from ban.datasets import Dataset, dataset_of
from ban.nets import build_model, check_output
from ban.tasks import TASKS
from ban.validation.chain import check_chain

EXAMPLES = 2  # the batch an imported network is tried on


def validate_everything(params: Params) -> str:
    """Raise the ConfigError a stage would raise; return the chain's task."""
    dataset = dataset_of(params.data)
    has_validation = params.data.validation is not None or TASKS.get(dataset.task, "task").ships_validation
    check_chain(params, dataset.task, has_validation)
    check_imported_networks(params, dataset)
    return dataset.task


def check_imported_networks(params: Params, dataset: Dataset) -> None:
    """Each network named by import path builds for the data and maps a batch to ``batch x num_classes``
    (when the dataset's shape and classes are known without reading it; else its train stage checks, on
    the data)."""
    facts = dataset.facts(params)
    if facts is None or facts.assumed or dataset.task != "image":
        return
    for name in params.generations():
        generation, key = params.generation(name), params.network_key(name)
        if is_import_path(generation.arch):
            model = build_model(generation.arch, generation.options, key, **facts.data_arguments)
            check_output(model, generation.arch, key, torch.zeros(EXAMPLES, *facts.shape),
                         facts.data_arguments["num_classes"])

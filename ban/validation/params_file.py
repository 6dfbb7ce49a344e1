"""Every check of a params file at once, for the ``validate`` stage and the tools that look at a chain
without running its stages (presets, the study launcher): the dataset's and the train stages'."""

from __future__ import annotations

from ban.core.config import Params
from ban.datasets import dataset_of
from ban.tasks import TASKS
from ban.validation.chain import check_chain


def validate_everything(params: Params) -> str:
    """Raise the ConfigError a stage would raise; return the chain's task."""
    dataset = dataset_of(params.data)
    has_validation = params.data.validation is not None or TASKS.get(dataset.task, "task").ships_validation
    check_chain(params, dataset.task, has_validation)
    return dataset.task

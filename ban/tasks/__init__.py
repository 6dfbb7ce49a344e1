"""Tasks: what a chain learns and how its results are read (image classification, language modelling).

A task declares its headline metric and its direction, the metrics it reports per split, how its
prepared data must look, and the facts cost estimates need. Everything that differs between
tasks outside the training loop reads it from here; the training side has its domains
(``ban.training.domain``), registered under the same task names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ban.core.errors import ConfigError
from ban.core.registry import Registry


@dataclass(frozen=True)
class Task:
    name: str  # also the ``task`` of prepared data, network families and training domains
    metric: str  # the per-split figure the paper reports: "error" (%) or "perplexity"
    value: Callable[[float, float], float]  # that figure from a split's (error %, mean NLL)
    lower_is_better: bool
    model_kind: str  # "an image classifier": for messages that a network does not fit the data
    data_kind: str  # "an image dataset"
    reports_agreement: bool  # whether a student's agreement with its teacher means something
    ships_validation: bool  # its datasets come with a validation split (else: data.validation holds one out)
    prepared_tensors: tuple[str, ...]  # what ``data/prepared/`` must hold
    check_prepared: Callable[[dict[str, Any], dict[str, Any]], str | None]  # (meta, tensors) -> problem
    counts_flops: bool  # forward FLOPs can be counted on the meta device (else 2 per parameter)
    assumed_flops_per_s: float  # sustained throughput of one H100 for cost estimates (an assumption)
    streams: bool = False  # its training domain can read batches from the prepared files (data.storage)

    @property
    def headline(self) -> str:
        """The number a chain is judged by: the metric on the test split."""
        return metric_name("test", self.metric)

    def split_metrics(self, split: str, error: float, nll: float) -> dict[str, float]:
        """The figures kept of one split: the task's metric and the mean negative log-likelihood."""
        return {metric_name(split, self.metric): self.value(error, nll), metric_name(split, "nll"): nll}


def metric_name(split: str, figure: str) -> str:
    """A generation's final figure, as metrics files, tables and studies name it: ``test_error``."""
    return f"{split}_{figure}"


def history_name(group: str, figure: str) -> str:
    """A figure of one epoch, as the history and DVCLive name it: ``train/loss``, ``test/error``,
    ``analysis/teacher_max_prob``."""
    return f"{group}/{figure}"


# A student's teacher's mean probability of the true class on the training batches: a figure of each
# epoch's analysis and of the student's metrics; near 1 its targets are one-hot (no dark knowledge).
TEACHER_TRUE_PROB = "teacher_true_prob"

TASKS: Registry[Task] = Registry("task", "ban.tasks")


def headline_metrics() -> dict[str, bool]:
    """Every task's headline metric and whether lower is better."""
    return {task.headline: task.lower_is_better for task in TASKS}


def check_storage(storage: str, task: str) -> None:
    """``data.storage: stream`` only for a task whose training domain streams (image classification)."""
    kind = TASKS.get(task, "task")
    if storage == "stream" and not kind.streams:
        raise ConfigError(f"data.storage: stream: {kind.data_kind} is always held in memory (its prepared "
                          "form is small); use auto or memory")

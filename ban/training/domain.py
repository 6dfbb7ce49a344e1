"""A domain turns prepared tensors into batches and logits for the engine.

Image classification and language modelling differ only here: both hand the engine
per-example (or per-token) logits ``[N, C]`` and targets ``[N]``, so the training loop,
the objectives, checkpoints and stages are shared. Each domain module in
``ban/training/domains/`` registers itself under the name of its task (``ban.tasks``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from ban.core.config import TrainConfig
from ban.core.registry import Registry
from ban.data.prepared import Prepared
from ban.predictions import Predictions


@dataclass
class Batch:
    """This process's share of one global batch.

    ``positions`` says where its examples sit in the global batch (None: it is the whole batch),
    so that per-example random draws and batch-wide sums can be made as one process would.
    """

    inputs: torch.Tensor
    targets: torch.Tensor  # flattened to [N]
    global_size: int
    positions: torch.Tensor | None = None

    @property
    def size(self) -> int:
        """Examples (images or tokens) in this share, for throughput figures."""
        return self.targets.numel()


class Runner(Protocol):
    """Runs one network on batches; language models carry hidden state inside."""

    def reset(self, batch_size: int) -> None: ...

    def __call__(self, batch: Batch) -> torch.Tensor: ...


class Domain(Protocol):
    task: str
    unit: str  # what throughput counts: "img" or "tok"
    eval_splits: tuple[str, ...]  # the last one is the reported (test) split

    def data_arguments(self) -> dict[str, object]: ...

    def signature(self) -> dict[str, object]: ...

    def prepare_model(self, model: nn.Module) -> nn.Module: ...

    def train_batches(self, generator: torch.Generator, rank: int = 0, world: int = 1) -> Iterator[Batch]: ...

    def train_steps(self, world: int = 1) -> int: ...  # how many batches ``train_batches`` yields

    def runner(self, model: nn.Module) -> Runner: ...

    def predict(self, model: nn.Module, split: str) -> Predictions: ...


@dataclass(frozen=True)
class DomainType:
    name: str  # the task it trains
    build: Callable[..., Domain]  # (prepared, train, device, precision, *, storage) -> Domain


DOMAINS: Registry[DomainType] = Registry("training domain", "ban.training.domains")


def make_domain(prepared: Prepared, train: TrainConfig, device: torch.device, precision: str, *,
                storage: str = "memory") -> Domain:
    """``storage`` is ``data.storage``: where training reads the prepared examples from."""
    return DOMAINS.get(prepared.task, "data/prepared task").build(prepared, train, device, precision,
                                                                  storage=storage)

"""A domain turns prepared tensors into batches and logits for the engine.

Image classification and language modelling differ only here: both hand the
engine per-example (or per-token) logits ``[N, C]`` and targets ``[N]``, so the
training loop, the objectives, checkpoints and stages are shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from ban.config import TrainConfig
from ban.data.prepared import Prepared


@dataclass
class Batch:
    inputs: torch.Tensor
    targets: torch.Tensor  # flattened to [N]

    @property
    def size(self) -> int:
        """Examples (images or tokens) in the batch, for throughput figures."""
        return self.targets.numel()


@dataclass
class Predictions:
    """What evaluation keeps of a network's outputs on one split."""

    target_prob: torch.Tensor  # [N] probability given to the true class / next token
    argmax: torch.Tensor | None  # [N] predicted class / token; None for a language-model ensemble
    targets: torch.Tensor  # [N]
    probs: torch.Tensor | None  # [N, C] for classifiers; None for language models (too large)

    @property
    def nll(self) -> float:
        return float(-self.target_prob.clamp_min(1e-30).double().log().mean())

    @property
    def error(self) -> float:
        """Top-1 error in percent (NaN where the prediction is not kept)."""
        if self.argmax is None:
            return float("nan")
        return float((self.argmax != self.targets).double().mean() * 100)

    def to_dict(self) -> dict[str, Any]:
        data = {"target_prob": self.target_prob, "targets": self.targets}
        for name in ("argmax", "probs"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Predictions:
        return cls(data["target_prob"], data.get("argmax"), data["targets"], data.get("probs"))


class Runner(Protocol):
    """Runs one network on batches; language models carry hidden state inside."""

    def reset(self, batch_size: int) -> None: ...

    def __call__(self, batch: Batch) -> torch.Tensor: ...


class Domain(Protocol):
    task: str
    unit: str  # what throughput counts: "img" or "tok"
    eval_splits: tuple[str, ...]  # the last one is the reported (test) split

    def data_arguments(self) -> dict[str, Any]: ...

    def signature(self) -> dict[str, Any]: ...

    def prepare_model(self, model: nn.Module) -> nn.Module: ...

    def train_batches(self, generator: torch.Generator, rank: int = 0, world: int = 1) -> Any: ...

    def runner(self, model: nn.Module) -> Runner: ...

    def predict(self, model: nn.Module, split: str) -> Predictions: ...


def make_domain(prepared: Prepared, train: TrainConfig, device: torch.device, precision: str) -> Domain:
    if prepared.task == "image":
        from ban.domains.image import ImageDomain

        return ImageDomain(prepared, train, device, precision)
    from ban.domains.text import TextDomain

    return TextDomain(prepared, train, device, precision)

"""What evaluation keeps of a network's outputs, per split, per generation and per ensemble: the records
shared by training, the ensemble stage and reporting, and their on-disk form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ban.core.files import load_torch
from ban.core.paths import predictions_path, stage_name
from ban.tasks import TEACHER_TRUE_PROB


@dataclass
class Predictions:
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


RUN_DESCRIPTION = ("precision", "device")  # what a generation trained with: text, not a metric


@dataclass
class GenerationMetrics:
    """A trained generation's record: the network's size, how long it trained, its final figures per
    split (``test_error``, ``test_nll``, ...; ``train_error`` from its last epoch), the precision and
    device it trained with, so that numbers made elsewhere are never compared blind, and for a student
    its teacher's mean probability of the true class on the last epoch's training batches (how much
    dark knowledge its targets leave: near 1 they are one-hot), so studies record it.
    ``metrics/<generation>.json`` holds its numbers (``figures``); precision and device describe the
    run, so they are in the predictions and the results table, not among the metrics."""

    params: int
    epochs: int
    train_error: float
    splits: dict[str, float]
    precision: str
    device: str
    teacher_true_prob: float | None = None

    def to_dict(self) -> dict[str, Any]:
        teacher = {} if self.teacher_true_prob is None else {TEACHER_TRUE_PROB: self.teacher_true_prob}
        return {"params": self.params, "epochs": self.epochs, "train_error": self.train_error, **self.splits,
                **teacher, "precision": self.precision, "device": self.device}

    def figures(self) -> dict[str, Any]:
        """The numbers of ``to_dict`` alone: what ``metrics/<generation>.json`` holds."""
        return {key: value for key, value in self.to_dict().items() if key not in RUN_DESCRIPTION}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationMetrics:
        named = {"params", "epochs", "train_error", "precision", "device", TEACHER_TRUE_PROB}
        return cls(data["params"], data["epochs"], data["train_error"],
                   {key: value for key, value in data.items() if key not in named}, data["precision"],
                   data["device"], data.get(TEACHER_TRUE_PROB))


@dataclass
class GenerationPredictions:
    """What ``preds/<generation>.pt`` holds: a trained generation's predictions on every split it was
    evaluated on (the last epoch's; the reported split last), its metrics and its per-epoch history."""

    generation: str
    teacher: str | None
    task: str
    metrics: GenerationMetrics
    history: list[dict[str, Any]]
    splits: dict[str, Predictions]
    reads_teacher: bool  # its objective trained on its teacher's outputs (False: the teacher, a control)

    @property
    def reported_split(self) -> str:
        return list(self.splits)[-1]

    def to_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "teacher": self.teacher, "reads_teacher": self.reads_teacher,
                "task": self.task,
                "metrics": self.metrics.to_dict(), "history": self.history,
                "splits": {split: predictions.to_dict() for split, predictions in self.splits.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationPredictions:
        splits = {split: Predictions.from_dict(saved) for split, saved in data["splits"].items()}
        metrics = GenerationMetrics.from_dict(data["metrics"])
        # saved before the field existed: every generation with a teacher read it (no control in the chain)
        reads_teacher = data.get("reads_teacher", data["teacher"] is not None)
        return cls(data["generation"], data["teacher"], data["task"], metrics, data["history"], splits,
                   reads_teacher)


@dataclass
class EnsemblePredictions:
    """One ensemble of ``ensemble/predictions.pt``: its members, in order, their averaged predictions per
    split and its metrics."""

    members: list[str]
    splits: dict[str, Predictions] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"members": self.members, "metrics": self.metrics,
                "splits": {split: predictions.to_dict() for split, predictions in self.splits.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnsemblePredictions:
        splits = {split: Predictions.from_dict(saved) for split, saved in data["splits"].items()}
        return cls(data["members"], splits, data["metrics"])


def load_generation_predictions(name: str) -> GenerationPredictions:
    """A generation's saved predictions, or one line naming the stage that makes them."""
    saved = load_torch(predictions_path(name), "predictions", f"stage {stage_name(name)} (dvc repro)")
    return GenerationPredictions.from_dict(saved)

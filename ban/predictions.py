"""What evaluation keeps of a network's outputs on one split: the type shared by training and reporting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


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

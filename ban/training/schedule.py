"""Learning-rate schedules, stepped once per epoch after evaluation.

``plateau`` (language models) multiplies by ``gamma`` when validation perplexity
improved by less than ``min_improvement`` over the previous epoch (Zaremba et al.:
gamma 0.25, min_improvement 0; Kim et al.: gamma 0.5, min_improvement 0.5). It
decides on the validation split only: the test split never influences training.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ban.core.config import TrainConfig


class EpochSchedule:
    """Sets the learning rate of every parameter group from the epoch count and the history."""

    def __init__(self, optimizer: torch.optim.Optimizer, train: TrainConfig) -> None:
        self.optimizer, self.settings, self.epochs = optimizer, train.schedule, train.epochs
        self.base_lr = train.optimizer.lr
        self.lr = self.base_lr
        self.epoch = 0
        self.previous = float("inf")  # validation perplexity of the last epoch

    def step(self, evaluation: dict[str, dict[str, float]]) -> None:
        self.epoch += 1
        name = self.settings.name
        if name == "step":
            passed = sum(self.epoch >= milestone for milestone in self.settings.milestones)
            self.lr = self.base_lr * self.settings.gamma ** passed
        elif name == "cosine":
            self.lr = self.base_lr * 0.5 * (1 + math.cos(math.pi * self.epoch / self.epochs))
        elif name == "plateau":
            perplexity = math.exp(evaluation["valid"]["nll"])
            improvement = self.previous - perplexity
            if improvement <= 0 or improvement < self.settings.min_improvement:
                self.lr *= self.settings.gamma
            self.previous = perplexity
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "epoch": self.epoch, "previous": self.previous}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lr, self.epoch, self.previous = state["lr"], state["epoch"], state["previous"]
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr


def make_schedule(optimizer: torch.optim.Optimizer, train: TrainConfig) -> EpochSchedule:
    return EpochSchedule(optimizer, train)

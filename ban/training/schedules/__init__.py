"""Registry of learning-rate schedules (``train.schedule.name``), stepped once per epoch after evaluation.

Each module of this package registers one ``Schedule``: the learning rate after an epoch, from the
epoch count, the settings and (for schedules that decide on it) the epoch's evaluation, and the
checks of the settings it needs. Adding a schedule means adding one module here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ban.core.config import TrainConfig
from ban.core.registry import Registry


class EpochSchedule:
    """Sets the learning rate of every parameter group after each epoch, as its schedule says."""

    def __init__(self, optimizer: torch.optim.Optimizer, train: TrainConfig) -> None:
        self.schedule = schedule_of(train)
        self.optimizer, self.settings, self.epochs = optimizer, train.schedule, train.epochs
        self.base_lr = train.optimizer.lr
        self.epoch = 0
        self.memory: dict[str, float] = {}  # what a schedule carries from epoch to epoch (saved with it)
        self.lr = self.schedule.initial(self) if self.schedule.initial else self.base_lr
        self._apply()

    def step(self, evaluation: dict[str, dict[str, float]]) -> None:
        self.epoch += 1
        self.lr = self.schedule.rate(self, evaluation)
        self._apply()

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "epoch": self.epoch, "memory": dict(self.memory)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lr, self.epoch, self.memory = state["lr"], state["epoch"], dict(state["memory"])
        self._apply()


def _no_check(train: TrainConfig, has_validation: bool) -> None:
    return None


@dataclass(frozen=True)
class Schedule:
    name: str
    summary: str  # the settings it reads, for the docs
    rate: Callable[[EpochSchedule, dict[str, dict[str, float]]], float]  # the learning rate after an epoch
    # raises ConfigError for settings it cannot follow; has_validation: the data holds a validation split
    check: Callable[[TrainConfig, bool], None] = field(default=_no_check)
    initial: Callable[[EpochSchedule], float] | None = None  # the first epoch's rate, if not the base rate


SCHEDULES: Registry[Schedule] = Registry("schedule", "ban.training.schedules", by_name=True)


def schedule_of(train: TrainConfig) -> Schedule:
    return SCHEDULES.get(train.schedule.name, "train.schedule.name")


def check_schedule(train: TrainConfig, has_validation: bool) -> None:
    """The schedule exists and can follow these settings on this data."""
    schedule_of(train).check(train, has_validation)


def make_schedule(optimizer: torch.optim.Optimizer, train: TrainConfig) -> EpochSchedule:
    return EpochSchedule(optimizer, train)


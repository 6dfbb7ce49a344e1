"""Registry of learning-rate schedules (``train.schedule.name``), stepped after each epoch's evaluation
and, for schedules defined per batch, after each optimiser step.

Each module of this package registers one ``Schedule``: the learning rate after an epoch, from the
epoch count, the settings and (for schedules that decide on it) the epoch's evaluation, or the rate
after a number of batches, and the checks of the settings it needs. Adding a schedule means adding one
module here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ban.core.config import TrainConfig
from ban.core.registry import Registry


class RateSchedule:
    """Sets the learning rate of every parameter group as its schedule says: after each epoch, or after
    each batch for a schedule defined per batch (``batches_per_epoch`` batches make an epoch)."""

    def __init__(self, optimizer: torch.optim.Optimizer, train: TrainConfig, batches_per_epoch: int) -> None:
        self.schedule = schedule_of(train)
        self.optimizer, self.settings, self.epochs = optimizer, train.schedule, train.epochs
        self.batches_per_epoch = batches_per_epoch
        self.base_lr = train.optimizer.lr
        self.epoch = 0
        self.batch = 0  # optimiser steps taken, counted for the schedules defined per batch
        self.memory: dict[str, float] = {}  # what a schedule carries from epoch to epoch (saved with it)
        self.lr = self.schedule.initial(self) if self.schedule.initial else self.base_lr
        self._apply()

    def step(self, evaluation: dict[str, dict[str, float]]) -> None:
        self.epoch += 1
        self.lr = self.schedule.rate(self, evaluation)
        self._apply()

    def step_batch(self) -> None:
        """After an optimiser step: the rate of the next batch, for a schedule defined per batch."""
        if self.schedule.batch_rate is not None:
            self.batch += 1
            self.lr = self.schedule.batch_rate(self)
            self._apply()

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "epoch": self.epoch, "batch": self.batch, "memory": dict(self.memory)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lr, self.epoch, self.memory = state["lr"], state["epoch"], dict(state["memory"])
        self.batch = state.get("batch", 0)  # saved before schedules counted batches: none was per batch
        self._apply()


def _no_check(train: TrainConfig, has_validation: bool) -> None:
    return None


@dataclass(frozen=True)
class Schedule:
    name: str
    summary: str  # the settings it reads, for the docs
    rate: Callable[[RateSchedule, dict[str, dict[str, float]]], float]  # the learning rate after an epoch
    # raises ConfigError for settings it cannot follow; has_validation: the data holds a validation split
    check: Callable[[TrainConfig, bool], None] = field(default=_no_check)
    initial: Callable[[RateSchedule], float] | None = None  # the first epoch's rate, if not the base rate
    batch_rate: Callable[[RateSchedule], float] | None = None  # the rate after ``state.batch`` batches


SCHEDULES: Registry[Schedule] = Registry("schedule", "ban.training.schedules", by_name=True)


def schedule_of(train: TrainConfig) -> Schedule:
    return SCHEDULES.get(train.schedule.name, "train.schedule.name")


def check_schedule(train: TrainConfig, has_validation: bool) -> None:
    """The schedule exists and can follow these settings on this data."""
    schedule_of(train).check(train, has_validation)


def make_schedule(optimizer: torch.optim.Optimizer, train: TrainConfig,
                  batches_per_epoch: int = 1) -> RateSchedule:
    return RateSchedule(optimizer, train, batches_per_epoch)

"""``onecycle``: the learning rate of PyTorch's ``torch.optim.lr_scheduler.OneCycleLR`` with its
defaults, stepped after every batch as PyTorch documents it: from a 25th of the base rate (``max_lr``)
up to it along half a cosine over the first ``warmup_share`` of the steps (``pct_start``, 0.3), then
half a cosine down to a 10,000th of that start at the last step. The momentum is not cycled
(``cycle_momentum=False``): it stays ``train.optimizer.momentum``."""

from __future__ import annotations

import math

from ban.core.config import TrainConfig
from ban.core.errors import ConfigError
from ban.training.schedules import SCHEDULES, RateSchedule, Schedule

DIV_FACTOR, FINAL_DIV_FACTOR = 25.0, 1e4


def one_cycle_rate(step: int, total_steps: int, max_lr: float, pct_start: float) -> float:
    """The rate after ``step`` optimiser steps of ``total_steps`` (PyTorch's two phases, cosine annealing)."""
    initial = max_lr / DIV_FACTOR
    phases = [(float(pct_start * total_steps) - 1, initial, max_lr),
              (total_steps - 1, max_lr, initial / FINAL_DIV_FACTOR)]
    start_step = 0.0
    for index, (end_step, start, end) in enumerate(phases):
        if step <= end_step or index == len(phases) - 1:
            share = (step - start_step) / (end_step - start_step)
            return end + (start - end) / 2.0 * (math.cos(math.pi * share) + 1)
        start_step = end_step
    raise AssertionError("unreachable: the last phase always answers")


def batch_rate(state: RateSchedule) -> float:
    return one_cycle_rate(state.batch, state.epochs * state.batches_per_epoch, state.base_lr,
                          state.settings.warmup_share)


def check(train: TrainConfig, has_validation: bool) -> None:
    if not 0 < train.schedule.warmup_share < 1:
        raise ConfigError(f"train.schedule.warmup_share: a share of the steps, between 0 and 1 (exclusive); "
                          f"got {train.schedule.warmup_share}")


SCHEDULES.register(Schedule(name="onecycle", summary="PyTorch's `OneCycleLR` with its defaults, per batch",
                            rate=lambda state, evaluation: state.lr, check=check, initial=batch_rate,
                            batch_rate=batch_rate))

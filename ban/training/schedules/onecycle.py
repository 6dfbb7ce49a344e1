"""``onecycle``: Smith's one-cycle policy by epoch, with PyTorch's ``OneCycleLR`` defaults: from a 25th
of the base rate up to the base rate over the first 30% of the epochs, then half a cosine down to a
10,000th of that start (the schedule of preset ``study-cifar10-32-crops``)."""

from __future__ import annotations

import math

from ban.training.schedules import SCHEDULES, EpochSchedule, Schedule

WARMUP_SHARE, START_DIVISOR, END_DIVISOR = 0.3, 25.0, 1e4


def rate(state: EpochSchedule, evaluation: dict[str, dict[str, float]]) -> float:
    """The rate of the epoch after ``state.epoch`` finished ones."""
    start = state.base_lr / START_DIVISOR
    warmup = max(1, round(WARMUP_SHARE * state.epochs))
    if state.epoch <= warmup:
        return start + (state.base_lr - start) * state.epoch / warmup
    end = start / END_DIVISOR
    progress = (state.epoch - warmup) / max(1, state.epochs - warmup)
    return end + (state.base_lr - end) * 0.5 * (1 + math.cos(math.pi * progress))


SCHEDULES.register(Schedule(name="onecycle", summary="up over the first 30% of the epochs, then down",
                            rate=rate, initial=lambda state: rate(state, {})))

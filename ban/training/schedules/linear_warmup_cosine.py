"""``linear_warmup_cosine``: by epoch, from a 25th of the base rate up to the base rate along a line over
the first ``warmup_share`` of the epochs (0.3), then half a cosine down towards a 10,000th of that start
(the schedule the crops study ran, ``reports/studies/cifar10-32-crops``, under the name ``onecycle`` it
then had).
Unlike PyTorch's ``OneCycleLR`` (``onecycle``) it warms up along a line, steps once per epoch, and
the last epoch does not reach the floor."""

from __future__ import annotations

import math

from ban.training.schedules import SCHEDULES, RateSchedule, Schedule

START_DIVISOR, END_DIVISOR = 25.0, 1e4


def rate(state: RateSchedule, evaluation: dict[str, dict[str, float]]) -> float:
    """The rate of the epoch after ``state.epoch`` finished ones."""
    start = state.base_lr / START_DIVISOR
    warmup = max(1, round(state.settings.warmup_share * state.epochs))
    if state.epoch <= warmup:
        return start + (state.base_lr - start) * state.epoch / warmup
    end = start / END_DIVISOR
    progress = (state.epoch - warmup) / max(1, state.epochs - warmup)
    return end + (state.base_lr - end) * 0.5 * (1 + math.cos(math.pi * progress))


SCHEDULES.register(Schedule(name="linear_warmup_cosine",
                            summary="by epoch: up along a line over `warmup_share` of the epochs, then "
                            "a cosine down", rate=rate, initial=lambda state: rate(state, {})))

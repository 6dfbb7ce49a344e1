"""``cosine``: from the base rate down to zero at the last epoch, along half a cosine."""

from __future__ import annotations

import math

from ban.training.schedules import SCHEDULES, RateSchedule, Schedule


def rate(state: RateSchedule, evaluation: dict[str, dict[str, float]]) -> float:
    return state.base_lr * 0.5 * (1 + math.cos(math.pi * state.epoch / state.epochs))


SCHEDULES.register(Schedule(name="cosine", summary="to zero at the last epoch", rate=rate))

"""``constant``: the base rate throughout."""

from __future__ import annotations

from ban.training.schedules import SCHEDULES, RateSchedule, Schedule


def rate(state: RateSchedule, evaluation: dict[str, dict[str, float]]) -> float:
    return state.base_lr


SCHEDULES.register(Schedule(name="constant", summary="the base rate throughout", rate=rate))

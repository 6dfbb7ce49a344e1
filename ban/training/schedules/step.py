"""``step``: the base rate multiplied by ``gamma`` at each of ``milestones`` (epochs)."""

from __future__ import annotations

from ban.training.schedules import SCHEDULES, RateSchedule, Schedule


def rate(state: RateSchedule, evaluation: dict[str, dict[str, float]]) -> float:
    passed = sum(state.epoch >= milestone for milestone in state.settings.milestones)
    return state.base_lr * state.settings.gamma ** passed


SCHEDULES.register(Schedule(name="step", summary="`milestones`, `gamma`", rate=rate))

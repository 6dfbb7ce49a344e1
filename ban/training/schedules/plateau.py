"""``plateau`` (language models): multiply by ``gamma`` when validation perplexity improved by less than
``min_improvement`` over the previous epoch (Zaremba et al.: gamma 0.25, min_improvement 0; Kim et al.:
gamma 0.5, min_improvement 0.5). It decides on the validation split only: the test split never
influences training."""

from __future__ import annotations

import math

from ban.core.config import TrainConfig
from ban.core.errors import ConfigError
from ban.training.schedules import SCHEDULES, RateSchedule, Schedule


def rate(state: RateSchedule, evaluation: dict[str, dict[str, float]]) -> float:
    perplexity = math.exp(evaluation["valid"]["nll"])
    improvement = state.memory.get("perplexity", math.inf) - perplexity
    state.memory["perplexity"] = perplexity
    if improvement <= 0 or improvement < state.settings.min_improvement:
        return state.lr * state.settings.gamma
    return state.lr


def check(train: TrainConfig, has_validation: bool) -> None:
    if train.eval_every != 1:
        raise ConfigError("train.eval_every: the plateau schedule decides after every epoch on the "
                          f"validation split; set it to 1 (got {train.eval_every})")
    if not has_validation:
        raise ConfigError("train.schedule.name: 'plateau' decides on a validation split, and this data has "
                          "none (set data.validation to hold out training images)")


SCHEDULES.register(Schedule(name="plateau", summary="`gamma`, `min_improvement`, on the validation split",
                            rate=rate, check=check))

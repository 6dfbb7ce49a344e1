"""``ban``: cross-entropy to the teacher's full distribution (with kd.label_weight > 0: BAN+L)."""

from __future__ import annotations

from torch import Tensor

from ban.objectives import OBJECTIVES, Objective, StepInputs, matching
from ban.objectives.functional import teacher_probs


def target(inputs: StepInputs) -> Tensor:
    return teacher_probs(inputs.teacher, inputs.kd.temperature)


OBJECTIVES.register(Objective(
    name="ban", summary="the teacher's full distribution (BAN; with kd.label_weight > 0, BAN+L)",
    needs_teacher=True, terms=matching(target)))

"""``none``: cross-entropy to the labels, no teacher. The teacher's objective, and the students' control."""

from __future__ import annotations

from torch import Tensor

from ban.objectives import OBJECTIVES, Objective, StepInputs


def terms(inputs: StepInputs) -> dict[str, Tensor]:
    return {"label": inputs.label_cross_entropy()}


OBJECTIVES.register(Objective(
    name="none", summary="the labels only: the control, a re-seeded network without a teacher",
    needs_teacher=False, terms=terms))

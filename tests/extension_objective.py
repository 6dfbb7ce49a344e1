"""An objective added from outside the library: copied into ``ban/objectives/`` by
``tests/test_extending.py``, it must work with no other change. ``halfway``: cross-entropy to the
average of the teacher's distribution and the one-hot label."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ban.objectives import OBJECTIVES, Objective, StepInputs
from ban.objectives.functional import soft_cross_entropy_from_log_probs, teacher_probs


def terms(inputs: StepInputs) -> dict[str, Tensor]:
    labels = F.one_hot(inputs.targets, inputs.logits.shape[1]).float()
    target = (teacher_probs(inputs.teacher) + labels) / 2
    return {"halfway": soft_cross_entropy_from_log_probs(inputs.log_probs(), target)}


OBJECTIVES.register(Objective(
    name="halfway", summary="halfway between the teacher's distribution and the label",
    needs_teacher=True, terms=terms))

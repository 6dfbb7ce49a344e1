"""``ban``: cross-entropy to the teacher's full distribution (with kd.label_weight > 0: BAN+L)."""

from __future__ import annotations

from torch import Tensor

from ban.objectives import OBJECTIVES, Objective, StepInputs, matching
from ban.objectives.functional import soft_cross_entropy, teacher_probs


def ban_loss(z: Tensor, t: Tensor, temperature: float = 1.0) -> Tensor:
    """T^2 * mean_s(-sum_i p_is log q_is): KL(p||q) plus the teacher's entropy, a batch mean over N."""
    return soft_cross_entropy(z, teacher_probs(t, temperature), temperature)


def target(inputs: StepInputs) -> Tensor:
    return teacher_probs(inputs.teacher, inputs.kd.temperature)


OBJECTIVES.register(Objective(
    name="ban", summary="the teacher's full distribution (BAN; with kd.label_weight > 0, BAN+L)",
    needs_teacher=True, terms=matching(target)))

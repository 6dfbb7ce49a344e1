"""``cwtm``: the label cross-entropy of each example weighted by the teacher's confidence in it."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ban.core.config import KDConfig
from ban.core.errors import ConfigError
from ban.objectives import OBJECTIVES, Objective, StepInputs
from ban.objectives.functional import confidence_weights, teacher_probs


def cwtm_weights(t: Tensor) -> Tensor:
    """w_s = max_i p_is / sum_u max_i p_iu at T = 1: the teacher's confidence, normalised over the batch."""
    return confidence_weights(teacher_probs(t))


def cwtm_loss(z: Tensor, t: Tensor, y: Tensor) -> Tensor:
    """sum_s w_s CE(z_s, y_s): label cross-entropy re-weighted per example (weights sum to 1)."""
    per_example = F.cross_entropy(z.float(), y, reduction="none")
    return (cwtm_weights(t) * per_example).sum()


def terms(inputs: StepInputs) -> dict[str, Tensor]:
    """The weights are normalised over the global batch, as the formula says: on several processes each
    divides by the mean of the processes' confidence sums, so that the average of their gradients, as
    DDP takes it, is the gradient of one process over the whole batch."""
    confidence = teacher_probs(inputs.teacher).amax(dim=1)
    normaliser = inputs.shard.total(confidence.sum()) / inputs.shard.world
    per_example = F.nll_loss(inputs.log_probs(), inputs.targets, reduction="none")
    return {"kd": (confidence / normaliser * per_example).sum()}


def check(kd: KDConfig, key: str) -> None:
    if kd.label_weight > 0:
        raise ConfigError(f"{key}.label_weight: cwtm is already a weighted label loss; set it to 0 for cwtm")


OBJECTIVES.register(Objective(
    name="cwtm", summary="the labels, each example weighted by the teacher's confidence (CWTM)",
    needs_teacher=True, terms=terms, check=check))

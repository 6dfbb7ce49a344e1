"""``cwtm``: the label cross-entropy of each example weighted by the teacher's confidence in it."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ban.core.config import KDConfig
from ban.core.errors import ConfigError
from ban.objectives import OBJECTIVES, Objective, StepInputs
from ban.objectives.functional import teacher_probs


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

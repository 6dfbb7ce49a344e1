"""The paper's objectives written as plain formulas of logits, one function each: the oracles the
library's objective terms (``ban.objectives``) are checked against, themselves checked by hand."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ban.objectives.dkpp import dkpp_targets
from ban.objectives.functional import (
    confidence_weights,
    scaled,
    soft_cross_entropy_from_log_probs,
    teacher_probs,
)


def soft_cross_entropy(z: Tensor, p_target: Tensor, temperature: float = 1.0) -> Tensor:
    """Cross-entropy of softmax(z / T) to the distribution ``p_target``, scaled by T^2."""
    return soft_cross_entropy_from_log_probs(F.log_softmax(scaled(z, temperature), dim=1), p_target,
                                             temperature)


def cross_entropy(z: Tensor, y: Tensor) -> Tensor:
    """Batch-mean cross-entropy to the labels, in float32."""
    return F.cross_entropy(z.float(), y)


def ban_loss(z: Tensor, t: Tensor, temperature: float = 1.0) -> Tensor:
    """T^2 * mean_s(-sum_i p_is log q_is): KL(p||q) plus the teacher's entropy, a batch mean over N."""
    return soft_cross_entropy(z, teacher_probs(t, temperature), temperature)


def cwtm_weights(t: Tensor) -> Tensor:
    """w_s = max_i p_is / sum_u max_i p_iu at T = 1: the teacher's confidence, normalised over the batch."""
    return confidence_weights(teacher_probs(t))


def cwtm_loss(z: Tensor, t: Tensor, y: Tensor) -> Tensor:
    """sum_s w_s CE(z_s, y_s): label cross-entropy re-weighted per example (weights sum to 1)."""
    per_example = F.cross_entropy(z.float(), y, reduction="none")
    return (cwtm_weights(t) * per_example).sum()


def dkpp_loss(z: Tensor, t: Tensor, generator: torch.Generator | None = None,
              temperature: float = 1.0) -> Tensor:
    """Cross-entropy to the permuted teacher distribution of ``dkpp_targets``."""
    return soft_cross_entropy(z, dkpp_targets(t, generator, temperature), temperature)

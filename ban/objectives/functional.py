"""The arithmetic the objectives share, as small pure functions of logits.

Logits are flattened to 2-D (N x C; language models flatten their tokens into N). Reductions
are means over the N samples, never over N * C (the ``nn.KLDivLoss()`` default, which shrinks
the distillation term by a factor C). Logits are cast to float32 so that bf16 autocast outputs
give float32 losses, and teacher logits are detached: the teacher is a constant target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def scaled(logits: Tensor, temperature: float) -> Tensor:
    """``logits / T`` in float32; at T = 1 the logits themselves, sparing a pass over N x C values
    (the cost of a step on a 10,000-word vocabulary is mostly such passes)."""
    logits = logits.float()
    return logits if temperature == 1 else logits / temperature


def teacher_probs(t: Tensor, temperature: float = 1.0) -> Tensor:
    """softmax(t / T) in float32, detached so no gradient ever reaches the teacher."""
    return F.softmax(scaled(t.detach(), temperature), dim=1)


def soft_cross_entropy_from_log_probs(log_q: Tensor, p_target: Tensor, temperature: float = 1.0) -> Tensor:
    """T^2 * mean_s(-sum_i p_is log_q_is); T^2 keeps gradients comparable across T.

    One dot product over all N x C values: no N x C product is written and read back, in the forward
    or the backward pass (which is ``-p`` scaled), and on a 10,000-word vocabulary that is felt."""
    return temperature**2 * -torch.dot(p_target.float().reshape(-1), log_q.reshape(-1)) / len(log_q)


def confidence_weights(p: Tensor) -> Tensor:
    """The CWTM weights ``max_i p_is / sum_u max_i p_iu`` from teacher probabilities already computed."""
    confidence = p.amax(dim=1)
    return confidence / confidence.sum()

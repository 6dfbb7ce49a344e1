"""The arithmetic the objectives share, as small pure functions of logits.

Logits are flattened to 2-D (N x C; language models flatten their tokens into N). Reductions
are means over the N samples, never over N * C (the ``nn.KLDivLoss()`` default, which shrinks
the distillation term by a factor C). Logits are cast to float32 so that bf16 autocast outputs
give float32 losses, and teacher logits are detached: the teacher is a constant target.
"""

from __future__ import annotations

from typing import Any

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


class _DistributionAndLabels(torch.autograd.Function):
    """The forward and backward of :func:`distribution_and_label_cross_entropy`."""

    @staticmethod
    def forward(ctx: Any, log_q: Tensor, p_target: Tensor, targets: Tensor,
                weight: float) -> tuple[Tensor, Tensor]:
        ctx.save_for_backward(p_target, targets)
        ctx.weight = weight
        soft = -torch.dot(p_target.float().reshape(-1), log_q.reshape(-1)) / len(log_q)
        return soft, weight * F.nll_loss(log_q, targets)

    @staticmethod
    def backward(ctx: Any, soft_grad: Tensor, label_grad: Tensor) -> tuple[Tensor, None, None, None]:
        p_target, targets = ctx.saved_tensors
        n, rows = len(p_target), targets[:, None]
        soft_scale, label_scale = -(soft_grad / n), -(label_grad / n)
        grad = p_target.float() * soft_scale
        weight = torch.full_like(grad[:, :1], ctx.weight)
        on_target = p_target.float().gather(1, rows)
        # summed terms (both scales equal): (p + w) * scale, the gradient of one cross-entropy to p + w onehot
        together = torch.where(soft_scale == label_scale, (on_target + weight) * soft_scale,
                               on_target * soft_scale + weight * label_scale)
        return grad.scatter_(1, rows, together), None, None, None


def distribution_and_label_cross_entropy(log_q: Tensor, p_target: Tensor, targets: Tensor,
                                         weight: float) -> tuple[Tensor, Tensor]:
    """``mean_s(-sum_i p_is log_q_is)`` and ``weight * mean_s(-log_q_{y_s s})`` from one ``log_q`` (T = 1).

    Each is a term of its own (its gradient is that term's), but the backward pass writes both terms'
    gradients in one pass over N x C values instead of two N x C gradients summed: for their sum, the
    gradient of one cross-entropy to ``p + weight * onehot(y)``, bit for bit."""
    return _DistributionAndLabels.apply(log_q, p_target, targets, weight)


def confidence_weights(p: Tensor) -> Tensor:
    """The CWTM weights ``max_i p_is / sum_u max_i p_iu`` from teacher probabilities already computed."""
    confidence = p.amax(dim=1)
    return confidence / confidence.sum()

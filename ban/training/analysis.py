"""The gradient decomposition of the BAN objective (paper section 3.2), logged per epoch.

At T = 1 the gradient of the BAN loss of sample s w.r.t. its logits is ``q_s - p_s``
(times 1/N for the batch mean; the per-sample form is logged so the numbers do not depend
on the batch size). Its true-class coordinate is the "ground-truth" part, which CWTM
keeps; the other C-1 coordinates are the "dark knowledge" part, which DKPP permutes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ban.objectives.functional import confidence_weights, teacher_probs
from ban.tasks import TEACHER_TRUE_PROB


@torch.no_grad()
def gradient_decomposition(z: Tensor, t: Tensor, y: Tensor) -> dict[str, Tensor]:
    """Batch means of the parts of ``q - p``, as detached scalars left on the device.

    * ``true_class_grad``: mean of |q_* - p_*|.
    * ``dark_knowledge_grad``: mean of the L2 norm of the C-1 non-true coordinates of q - p;
      the L2 norm is the size of that part of the gradient vector, whatever C is split into.
    * ``teacher_true_prob``: mean p_*; ``teacher_max_prob``: mean max_i p_i.
    * ``cwtm_weight_std``: population standard deviation (0 for one sample) of N * w_s. The
      weights sum to 1, so N * w_s has mean 1 and its spread does not shrink with N.

    Values stay tensors (no ``.item()``) so the caller can accumulate without device syncs.
    """
    q = F.softmax(z.detach().float(), dim=1)
    p = teacher_probs(t)
    grad = q - p
    true_index = y.unsqueeze(1)
    weights = confidence_weights(p)
    return {
        "true_class_grad": grad.gather(1, true_index).abs().mean(),
        "dark_knowledge_grad": grad.scatter(1, true_index, 0.0).norm(dim=1).mean(),
        TEACHER_TRUE_PROB: p.gather(1, true_index).mean(),
        "teacher_max_prob": p.amax(dim=1).mean(),
        "cwtm_weight_std": (weights * weights.numel()).std(correction=0),
    }

"""Training objectives of Born-Again Networks: BAN, BAN+L, CWTM, DKPP and the no-teacher control.

Every function takes logits flattened to 2-D (``z`` student and ``t`` teacher, N x C) and
int64 targets ``y`` (N); language models flatten their tokens into N. Reductions are means
over the N samples, never over N * C (the ``nn.KLDivLoss()`` default, which shrinks the
distillation term by a factor C). Logits are cast to float32 so that bf16 autocast outputs
give float32 losses, and teacher logits are detached: the teacher is a constant target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ban.errors import ConfigError

MODES = ("ban", "cwtm", "dkpp", "none")


def scaled(logits: Tensor, temperature: float) -> Tensor:
    """``logits / T`` in float32; at T = 1 the logits themselves, sparing a pass over N x C values
    (the cost of a step on a 10,000-word vocabulary is mostly such passes)."""
    logits = logits.float()
    return logits if temperature == 1 else logits / temperature


def teacher_probs(t: Tensor, temperature: float = 1.0) -> Tensor:
    """softmax(t / T) in float32, detached so no gradient ever reaches the teacher."""
    return F.softmax(scaled(t.detach(), temperature), dim=1)


def soft_cross_entropy(z: Tensor, p_target: Tensor, temperature: float = 1.0) -> Tensor:
    """T^2 * mean_s(-sum_i p_is log softmax(z_s / T)_i); T^2 keeps gradients comparable across T."""
    log_q = F.log_softmax(scaled(z, temperature), dim=1)
    return temperature**2 * -(p_target.float() * log_q).sum(dim=1).mean()


def cross_entropy(z: Tensor, y: Tensor) -> Tensor:
    """Batch-mean cross-entropy to the labels, in float32."""
    return F.cross_entropy(z.float(), y)


def ban_loss(z: Tensor, t: Tensor, temperature: float = 1.0) -> Tensor:
    """Cross-entropy to the teacher's full distribution (KL(p||q) plus the teacher's entropy)."""
    return soft_cross_entropy(z, teacher_probs(t, temperature), temperature)


def cwtm_weights(t: Tensor) -> Tensor:
    """w_s = max_i p_is / sum_u max_i p_iu at T = 1: the teacher's confidence, normalised over the batch."""
    return confidence_weights(teacher_probs(t))


def confidence_weights(p: Tensor) -> Tensor:
    """The CWTM weights from teacher probabilities already computed."""
    confidence = p.amax(dim=1)
    return confidence / confidence.sum()


def cwtm_loss(z: Tensor, t: Tensor, y: Tensor) -> Tensor:
    """Label cross-entropy re-weighted per sample by the teacher's confidence (weights sum to 1)."""
    per_sample = F.cross_entropy(z.float(), y, reduction="none")
    return (cwtm_weights(t) * per_sample).sum()


def dkpp_targets(t: Tensor, generator: torch.Generator | None = None, temperature: float = 1.0) -> Tensor:
    """Teacher distribution with its non-argmax probabilities shuffled, a fresh permutation per sample.

    The argmax probability stays at the argmax class, so only which classes the dark knowledge
    calls similar is destroyed, not its moments. Vectorised: random sort keys with the argmax
    forced first give, per row, the argmax followed by a random order of the others
    (``destination``); the same trick on ``arange`` gives the argmax followed by the others in
    index order (``source``). ``generator`` must live on the logits' device.
    """
    p = teacher_probs(t, temperature)
    n, c = p.shape
    argmax = p.argmax(dim=1, keepdim=True)
    random_keys = torch.rand(n, c, generator=generator, device=p.device)
    index_keys = torch.arange(c, device=p.device).expand(n, c)
    destination = random_keys.scatter(1, argmax, -1.0).argsort(dim=1)
    source = index_keys.scatter(1, argmax, -1).argsort(dim=1)
    return torch.empty_like(p).scatter_(1, destination, p.gather(1, source))


def dkpp_loss(
    z: Tensor, t: Tensor, generator: torch.Generator | None = None, temperature: float = 1.0
) -> Tensor:
    """Cross-entropy to the permuted teacher distribution of ``dkpp_targets``."""
    return soft_cross_entropy(z, dkpp_targets(t, generator, temperature), temperature)


def _validate(mode: str, t: Tensor | None, label_weight: float, temperature: float) -> None:
    """Reject settings that would silently train something other than what was asked."""
    if mode not in MODES:
        raise ConfigError(f"kd.mode must be one of {', '.join(MODES)}; got {mode!r}")
    if label_weight < 0:
        raise ConfigError(f"kd.label_weight must be >= 0; got {label_weight}")
    if temperature <= 0:
        raise ConfigError(f"kd.temperature must be > 0; got {temperature}")
    if mode == "cwtm" and label_weight > 0:
        raise ConfigError("kd.label_weight must be 0 with kd.mode 'cwtm': its loss is already the label CE")
    if mode != "none" and t is None:
        raise ValueError(f"kd.mode {mode!r} needs teacher logits")


def distillation_losses(
    mode: str,
    z: Tensor,
    y: Tensor,
    t: Tensor | None = None,
    *,
    label_weight: float = 0.0,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Named loss terms whose sum is the training loss of one batch.

    ``"kd"`` is the teacher-driven term (ban, dkpp, or the confidence-weighted CE of cwtm);
    ``"label"`` is the label cross-entropy, already multiplied by ``label_weight`` (BAN+L).
    ``none`` returns only the unweighted ``"label"`` and ignores ``t``. The temperature
    applies to ban and dkpp only; cwtm weights use T = 1 as in the paper, and cwtm rejects
    ``label_weight > 0`` because its loss is already a label cross-entropy.
    """
    _validate(mode, t, label_weight, temperature)
    if mode == "none":
        return {"label": cross_entropy(z, y)}
    if mode == "cwtm":
        return {"kd": cwtm_loss(z, t, y)}
    if mode == "ban":
        terms = {"kd": ban_loss(z, t, temperature)}
    else:
        terms = {"kd": dkpp_loss(z, t, generator, temperature)}
    if label_weight > 0:
        terms["label"] = label_weight * cross_entropy(z, y)
    return terms

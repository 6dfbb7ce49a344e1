"""``dkpp``: cross-entropy to the teacher's distribution with its non-argmax probabilities permuted."""

from __future__ import annotations

import torch
from torch import Tensor

from ban.objectives import OBJECTIVES, Objective, Shard, StepInputs, matching
from ban.objectives.functional import teacher_probs


def dkpp_targets(t: Tensor, generator: torch.Generator | None = None, temperature: float = 1.0,
                 shard: Shard | None = None) -> Tensor:
    """Teacher distribution with its non-argmax probabilities shuffled, a fresh permutation per example.

    The argmax probability stays at the argmax class, so only which classes the dark knowledge
    calls similar is destroyed, not its moments. Vectorised: random sort keys with the argmax
    forced first give, per row, the argmax followed by a random order of the others
    (``destination``); the same trick on ``arange`` gives the argmax followed by the others in
    index order (``source``). The keys are drawn for the global batch (``shard``), so several
    processes permute each example as one process would. ``generator`` lives on the logits' device.
    """
    p = teacher_probs(t, temperature)
    n, c = p.shape
    argmax = p.argmax(dim=1, keepdim=True)
    random_keys = (shard or Shard(n)).rand(c, generator, p.device)
    index_keys = torch.arange(c, device=p.device).expand(n, c)
    destination = random_keys.scatter(1, argmax, -1.0).argsort(dim=1)
    source = index_keys.scatter(1, argmax, -1).argsort(dim=1)
    return torch.empty_like(p).scatter_(1, destination, p.gather(1, source))


def target(inputs: StepInputs) -> Tensor:
    return dkpp_targets(inputs.teacher, inputs.generator, inputs.kd.temperature, inputs.shard)


OBJECTIVES.register(Objective(
    name="dkpp", summary="the teacher's distribution with the dark knowledge permuted (DKPP)",
    needs_teacher=True, terms=matching(target)))

"""Training objectives (``kd.mode``): each module of this package registers one.

An objective declares its name, whether it needs a teacher, its own settings checks, and its loss
terms. The engine asks :func:`loss_terms` for the named terms of a batch and sums them; the stages
never test a mode by name. An objective that matches a target distribution (BAN, DKPP) builds its
terms with :func:`matching`, which adds BAN+L's label term when ``kd.label_weight > 0``. To add an
objective, add a module here that calls ``OBJECTIVES.register``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from ban.core.config import Generation, KDConfig
from ban.core.registry import Registry
from ban.objectives.functional import (
    distribution_and_label_cross_entropy,
    scaled,
    soft_cross_entropy_from_log_probs,
)


@dataclass(frozen=True)
class Shard:
    """Where one process's examples sit in the global batch, so that objectives that look across
    the batch (normalised weights, per-example random draws) give what one process would."""

    global_size: int
    positions: Tensor | None = None  # indices into the global batch; None: the whole batch
    world: int = 1

    def total(self, value: Tensor) -> Tensor:
        """The sum of ``value`` over every process (no gradient flows through it)."""
        if self.world == 1:
            return value
        summed = value.detach().clone()
        dist.all_reduce(summed)
        return summed

    @property
    def share(self) -> float:
        """The examples each process would hold if the global batch split evenly."""
        return self.global_size / self.world

    def rand(self, columns: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
        """Uniform draws for this process's examples, drawn for the whole global batch."""
        draws = torch.rand(self.global_size, columns, generator=generator, device=device)
        return draws if self.positions is None else draws[self.positions]


class StepInputs:
    """What an objective sees of one batch: student and teacher logits (N x C), targets (N), the
    settings, a random generator and the shard. Log-probabilities are computed once per
    temperature and shared by every term (on a 10,000-word vocabulary each pass counts)."""

    def __init__(self, logits: Tensor, targets: Tensor, teacher_logits: Tensor | None, kd: KDConfig, *,
                 generator: torch.Generator | None = None, shard: Shard | None = None) -> None:
        self.logits, self.targets, self.teacher_logits, self.kd = logits, targets, teacher_logits, kd
        self.generator = generator
        self.shard = shard or Shard(len(targets))
        self._log_probs: dict[float, Tensor] = {}

    @property
    def teacher(self) -> Tensor:
        if self.teacher_logits is None:
            raise ValueError(f"kd.mode {self.kd.mode!r} needs teacher logits")
        return self.teacher_logits

    def log_probs(self, temperature: float = 1.0) -> Tensor:
        if temperature not in self._log_probs:
            self._log_probs[temperature] = F.log_softmax(scaled(self.logits, temperature), dim=1)
        return self._log_probs[temperature]

    def label_cross_entropy(self) -> Tensor:
        """Batch-mean cross-entropy to the labels, from the shared log-probabilities at T = 1."""
        return self.global_mean(F.nll_loss(self.log_probs(), self.targets))

    def global_mean(self, local_mean: Tensor) -> Tensor:
        """A mean over this process's examples, weighted by their share of the global batch.

        DDP averages the processes' gradients; a batch that splits unevenly (the last one of an epoch)
        would otherwise weigh each example by the inverse of its process's count. Times
        ``n_local * world / global_size``, the average over processes is the global batch mean.
        """
        weight = len(self.targets) * self.shard.world / self.shard.global_size
        return local_mean if weight == 1 else local_mean * weight


def accept(kd: KDConfig, key: str) -> None:
    """The settings check of an objective that accepts every setting."""


@dataclass(frozen=True)
class Objective:
    name: str
    summary: str  # one line: what the student learns from
    needs_teacher: bool
    terms: Callable[[StepInputs], dict[str, Tensor]]  # named loss terms; the training loss is their sum
    check: Callable[[KDConfig, str], None] = field(default=accept)  # ConfigError naming ``key.<setting>``


OBJECTIVES: Registry[Objective] = Registry("objective", "ban.objectives", by_name=True)


def objective_of(kd: KDConfig, key: str = "kd") -> Objective:
    return OBJECTIVES.get(kd.mode, f"{key}.mode")


def learns_from_teacher(generation: Generation) -> bool:
    """Whether ``generation`` trains against its teacher's outputs: it has one, and its objective reads
    them (a control student, ``kd.mode: none``, has a teacher in the chain but never runs it)."""
    return generation.teacher is not None and objective_of(generation.kd).needs_teacher


def check_kd(kd: KDConfig, key: str) -> None:
    """The mode exists and accepts these settings."""
    objective_of(kd, key).check(kd, key)


def loss_terms(inputs: StepInputs) -> dict[str, Tensor]:
    """Named loss terms of one batch, as the objective of ``inputs.kd`` defines them."""
    return objective_of(inputs.kd).terms(inputs)


def matching(target: Callable[[StepInputs], Tensor]) -> Callable[[StepInputs], dict[str, Tensor]]:
    """The terms of an objective that matches ``target`` (a new N x C tensor of probabilities at
    temperature T): ``kd`` = T^2 CE(softmax(z / T), target), and with ``kd.label_weight = w > 0`` the
    label term of BAN+L, ``label`` = w CE(z, y). Each term carries its own gradient (a caller may
    reweight or drop one).

    At T = 1 both terms read one log-softmax, and the backward pass writes their gradients in one pass
    over the classes (:func:`distribution_and_label_cross_entropy`).
    """

    def terms(inputs: StepInputs) -> dict[str, Tensor]:
        temperature, weight = inputs.kd.temperature, inputs.kd.label_weight
        goal = target(inputs)
        if weight <= 0 or temperature != 1:
            kd = soft_cross_entropy_from_log_probs(inputs.log_probs(temperature), goal, temperature)
            return {"kd": inputs.global_mean(kd),
                    **({"label": weight * inputs.label_cross_entropy()} if weight > 0 else {})}
        kd, label = distribution_and_label_cross_entropy(inputs.log_probs(), goal, inputs.targets, weight)
        return {"kd": inputs.global_mean(kd), "label": inputs.global_mean(label)}

    return terms

"""Train one generation: the student learns, the frozen teacher (if any) only predicts.

The loop keeps every running figure on the device and reads it once per epoch,
so no step waits for the host.  ``Trainer.state_dict`` holds everything needed
to continue bit for bit after an interruption (weights, optimiser, schedule, loss
scale and every rank's random generators).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ban.core.config import KDConfig, TrainConfig
from ban.core.errors import TrainingError
from ban.objectives import Shard, StepInputs, loss_terms
from ban.predictions import Predictions
from ban.training.allocator import keep_freed_memory
from ban.training.analysis import gradient_decomposition
from ban.training.checkpoint import unwrap
from ban.training.device import autocast
from ban.training.domain import Batch, Domain
from ban.training.progress import epoch_progress
from ban.training.schedules import make_schedule

# The gradient decomposition is a logged estimate: it reads an evenly strided sample of at most this many
# logits per step. On a language model (700 tokens x 10,000 words per step) a sample of 350 tokens cost
# 40% of a plain step of the ptb-tiny network; 26 tokens cost 1%, and an epoch still averages thousands.
# Image batches (128 x 10 or 100 classes) are read whole.
ANALYSIS_VALUES = 2**18


@dataclass
class EpochReport:
    epoch: int  # 1-based
    lr: float
    train_loss: float
    train_error: float
    losses: dict[str, float]
    analysis: dict[str, float]
    examples_per_s: float
    seconds: float
    eval: dict[str, dict[str, float]] = field(default_factory=dict)  # split -> {error, nll}; {}: none


class FrozenTeacher(nn.Module):
    """A teacher that cannot leave eval mode and never builds a graph."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> FrozenTeacher:
        return self  # dropout and batch-norm statistics stay frozen

    def forward(self, batch_runner: Callable[[Batch], torch.Tensor], batch: Batch) -> torch.Tensor:
        # no_grad rather than inference mode: an inference tensor could enter the student's loss only
        # through a copy, and on a 10,000-word vocabulary that copy is a noticeable part of a step
        with torch.no_grad():
            return batch_runner(batch).float()


class Trainer:
    def __init__(self, model: nn.Module, domain: Domain, train: TrainConfig, kd: KDConfig, *, seed: int,
                 device: torch.device, precision: str, generation: str, teacher: nn.Module | None = None,
                 rank: int = 0, world: int = 1) -> None:
        keep_freed_memory()  # the process trains now: big per-step tensors are reused, not mapped afresh
        self.model, self.domain, self.settings, self.kd = model, domain, train, kd
        self.device, self.precision, self.generation = device, precision, generation
        self.rank, self.world = rank, world
        # the teacher is given only when the objective reads it (``learns_from_teacher``): it is run as given
        self.teacher = FrozenTeacher(teacher) if teacher is not None else None
        self.optimizer = make_optimizer(model, train, device)
        self.schedule = make_schedule(self.optimizer, train, domain.train_steps(world))
        # fp16 needs loss scaling: small gradients would round to zero; the scaler skips steps that overflow
        self.scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
        # the same global batches and draws on every rank (each takes its share of them) ...
        self.data_generator = seeded_generator(seed + 1, device)
        self.kd_generator = seeded_generator(seed + 2, device)
        # ... but dropout masks of their own: the global generators, which dropout draws from, are
        # seeded per rank (rank 0 keeps a one-process run's stream, so its results do not change)
        self.seed = seed
        if rank > 0:
            torch.manual_seed(rank_seed(seed, rank))
        self.epoch = 0
        self.check_each_step = device.type == "cpu"  # free on the CPU; a host sync elsewhere
        self.predictions: dict[str, Predictions] = {}  # rank 0: the last evaluation's, per split
        self.predicted_at = 0  # the epoch they were made after

    def run(self, on_epoch: Callable[[EpochReport], None]) -> None:
        while self.epoch < self.settings.epochs:
            report = self.train_epoch()
            if self.evaluates_after(self.epoch):
                report.eval = {split: self.evaluate(split) for split in self.domain.eval_splits}
            self.schedule.step(report.eval)
            on_epoch(report)

    def evaluates_after(self, epoch: int) -> bool:
        """Every ``train.eval_every`` epochs, and always after the last one (the reported numbers)."""
        return epoch % self.settings.eval_every == 0 or epoch == self.settings.epochs

    def final_predictions(self) -> dict[str, Predictions]:
        """Every split's predictions by the trained network (rank 0; the others get {}), reusing the last
        epoch's evaluation. Every rank calls it: evaluating again, after a resume, shares the figures."""
        if self.predicted_at != self.epoch:  # resumed after the last epoch was saved
            for split in self.domain.eval_splits:
                self.evaluate(split)
        return self.predictions

    def train_epoch(self) -> EpochReport:
        self.model.train()
        if self.device.type == "cuda":
            # cuDNN's multi-layer LSTM keeps a dropout state of its own, outside the CUDA generator's saved
            # state; seeding the generator makes cuDNN draw it afresh, so each epoch starts from the same
            # state whether or not the run was resumed
            with torch.cuda.device(self.device):
                torch.cuda.manual_seed(rank_seed(self.seed, self.rank, self.epoch + 1))
        student = self.domain.runner(self.model)
        teacher = self.domain.runner(self.teacher.model) if self.teacher else None
        for runner in (student, teacher):
            if runner is not None:
                runner.reset(self.settings.batch_size // self.world)
        totals: dict[str, torch.Tensor] = {}
        examples, started = 0, time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]
        label = f"{self.generation} [epoch {self.epoch + 1}/{self.settings.epochs}]"
        progress = epoch_progress(label, self.domain.train_steps(self.world), self.domain.unit) \
            if self.rank == 0 else None
        for batch in self.domain.train_batches(self.data_generator, self.rank, self.world):
            for name, value in self.step(batch, student, teacher).items():
                totals[name] = totals.get(name, 0) + value
            examples += batch.size
            if progress is not None:
                progress.update(batch.size * self.world)  # host counters only: no device sync
        if progress is not None:
            progress.close()
        self.epoch += 1
        means = self.reduce(totals, examples)
        seconds = time.perf_counter() - started
        losses = group_of(means, LOSS)
        report = EpochReport(
            epoch=self.epoch, lr=lr, train_loss=sum(losses.values()), train_error=means["error"] * 100,
            losses=losses, analysis=group_of(means, ANALYSIS), examples_per_s=examples * self.world / seconds,
            seconds=seconds)
        if not math.isfinite(report.train_loss):
            self.fail(self.epoch)
        return report

    def step(self, batch: Batch, student: Any, teacher: Any) -> dict[str, torch.Tensor]:
        with autocast(self.device, self.precision):  # the teacher predicts in the student's precision
            logits = student(batch).float()
            teacher_logits = self.teacher(teacher, batch) if self.teacher else None
        shard = Shard(batch.global_size, batch.positions, self.world)
        losses = loss_terms(StepInputs(logits, batch.targets, teacher_logits, self.kd,
                                       generator=self.kd_generator, shard=shard))
        loss = sum(losses.values())
        if self.check_each_step and not torch.isfinite(loss):
            self.fail(self.epoch + 1)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)  # the true gradients, for clipping and the step
        if self.settings.clip_grad_norm > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.clip_grad_norm)
        if self.scaler is None:
            self.optimizer.step()
        else:
            self.scaler.step(self.optimizer)  # skipped when a gradient overflowed
            self.scaler.update()
        self.schedule.step_batch()  # a schedule defined per batch moves on, as PyTorch's schedulers do
        return self.batch_sums(losses, logits.detach(), teacher_logits, batch, shard)

    @staticmethod
    def batch_sums(losses: dict[str, torch.Tensor], logits: torch.Tensor, teacher_logits: torch.Tensor | None,
                   batch: Batch, shard: Shard) -> dict[str, torch.Tensor]:
        """This process's part of the epoch's sums, so that their total over processes, divided by the
        examples, is the global mean: each loss term is a global-batch mean scaled for DDP's average
        (``StepInputs.global_mean``), so it counts for ``shard.share`` examples; the other figures are
        means over this process's examples."""
        figures = {in_group(LOSS, name): value.detach() * shard.share for name, value in losses.items()}
        figures["error"] = (logits.argmax(1) != batch.targets).float().sum()
        if teacher_logits is not None:
            sample = slice(None, None, math.ceil(logits.numel() / ANALYSIS_VALUES))
            stats = gradient_decomposition(logits[sample], teacher_logits[sample], batch.targets[sample])
            figures.update({in_group(ANALYSIS, name): value * batch.size for name, value in stats.items()})
        return figures

    def reduce(self, totals: dict[str, torch.Tensor], examples: int) -> dict[str, float]:
        """Per-example means over the epoch, across every rank; the only host read of the epoch."""
        names = sorted(totals)
        packed = torch.stack([torch.as_tensor(totals[n], device=self.device, dtype=torch.float64)
                              for n in names] + [torch.tensor(float(examples), device=self.device,
                                                              dtype=torch.float64)])
        if self.world > 1:
            dist.all_reduce(packed)
        values = packed.tolist()
        return {name: value / values[-1] for name, value in zip(names, values[:-1], strict=True)}

    def evaluate(self, split: str) -> dict[str, float]:
        """Rank 0 evaluates the plain module (no DDP collective, no recompiling) and shares the figures."""
        figures: list[dict[str, float] | None] = [None]
        self.predicted_at = self.epoch
        if self.rank == 0:
            predictions = self.domain.predict(unwrap(self.model), split)
            self.predictions[split] = predictions
            figures = [{"error": predictions.error, "nll": predictions.nll}]
        if self.world > 1:
            dist.broadcast_object_list(figures, src=0)
        return figures[0]

    def fail(self, epoch: int) -> None:
        raise TrainingError(f"{self.generation}: the loss became NaN or infinite in epoch {epoch}; "
                            "lower train.optimizer.lr (the last completed epoch's state is kept)")

    def state_dict(self) -> dict[str, Any]:
        """Every rank calls it (it gathers each rank's own random generators); rank 0 saves the result."""
        generators = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            generators["cuda"] = torch.cuda.get_rng_state(self.device)
        ranks: list[Any] = [generators]
        if self.world > 1:
            ranks = [None] * self.world
            dist.all_gather_object(ranks, generators)
        state = {"epoch": self.epoch, "model": unwrap(self.model).state_dict(),
                 "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
                 "data_generator": self.data_generator.get_state(),
                 "kd_generator": self.kd_generator.get_state(), "rank_generators": ranks}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unwrap(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.data_generator.set_state(state["data_generator"])
        self.kd_generator.set_state(state["kd_generator"])
        if self.scaler is not None:
            self.scaler.load_state_dict(state["scaler"])
        if self.rank < len(state["rank_generators"]):  # a rank the saved run did not have keeps its seed
            generators = state["rank_generators"][self.rank]
            torch.set_rng_state(generators["torch"])
            if "cuda" in generators:
                torch.cuda.set_rng_state(generators["cuda"], self.device)
        self.epoch = state["epoch"]


LOSS, ANALYSIS = "loss", "analysis"  # the groups of an epoch's summed figures besides the error


def in_group(group: str, name: str) -> str:
    """The name of figure ``name`` of ``group`` among an epoch's sums (one flat dict, reduced at once)."""
    return f"{group}/{name}"


def group_of(figures: dict[str, float], group: str) -> dict[str, float]:
    """The figures of ``group``, by their own names."""
    prefix = in_group(group, "")
    return {name.removeprefix(prefix): value for name, value in figures.items() if name.startswith(prefix)}


def rank_seed(seed: int, rank: int, epoch: int = 0) -> int:
    """A seed of its own for each rank (and epoch), derived from the generation's seed."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{rank}/{epoch}".encode()).digest()[:8], "little") >> 1


def seeded_generator(seed: int, device: torch.device) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def make_optimizer(model: nn.Module, train: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum; the fused kernel on CUDA and CPU (on the CPU 3-5x faster than foreach)."""
    settings = train.optimizer
    fast = {"fused": True} if device.type in ("cuda", "cpu") else {"foreach": True}
    return torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum,
                           nesterov=settings.nesterov and settings.momentum > 0,
                           weight_decay=settings.weight_decay, **fast)

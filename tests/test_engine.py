"""The training loop on real (tiny) digits data, the frozen teacher and the schedules."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from ban.config import KDConfig, ScheduleConfig, TrainConfig
from ban.data.images import prepare_images
from ban.domains import Batch
from ban.domains.image import ImageDomain
from ban.engine import FrozenTeacher, Trainer
from ban.nets import build_model
from ban.schedule import make_schedule

CPU = torch.device("cpu")
TRAIN = TrainConfig(epochs=3, batch_size=50, optimizer=dataclasses.replace(TrainConfig().optimizer, lr=0.05))


@pytest.fixture(scope="module")
def domain() -> ImageDomain:
    prepared = prepare_images("digits", "unused", download=False, train_subset=200, image_size=None, seed=0)
    return ImageDomain(prepared, TRAIN, CPU, "fp32")


def tiny(domain: ImageDomain, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("resnet", {"depth": 8, "width": 4}, **domain.data_arguments())


def test_frozen_teacher_stays_in_eval_mode_and_builds_no_graph(domain: ImageDomain) -> None:
    model = tiny(domain, 0)
    teacher = FrozenTeacher(model)
    teacher.train()
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    batch = next(domain.train_batches(torch.Generator().manual_seed(0)))
    logits = teacher(domain.runner(model), batch)
    assert not logits.requires_grad and not logits.is_inference()


def test_training_lowers_the_loss_and_reports_every_epoch(domain: ImageDomain) -> None:
    reports = []
    trainer = Trainer(tiny(domain, 1), domain, TRAIN, KDConfig(mode="none"), seed=1, device=CPU,
                      precision="fp32", generation="gen0")
    trainer.run(reports.append)
    assert [r.epoch for r in reports] == [1, 2, 3]
    assert reports[-1].train_loss < reports[0].train_loss
    assert set(reports[0].eval) == {"test"} and 0 <= reports[-1].eval["test"]["error"] <= 100
    assert reports[0].analysis == {}  # no teacher, nothing to decompose


def test_student_loss_uses_the_teacher(domain: ImageDomain) -> None:
    teacher = tiny(domain, 2)
    trainer = Trainer(tiny(domain, 3), domain, dataclasses.replace(TRAIN, epochs=1), KDConfig(mode="ban"),
                      seed=3, device=CPU, precision="fp32", generation="gen1", teacher=teacher)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    report = trainer.train_epoch()
    assert set(report.losses) == {"kd"} and "teacher_max_prob" in report.analysis
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def test_same_seed_same_weights(domain: ImageDomain) -> None:
    def weights() -> list[torch.Tensor]:
        one_epoch = dataclasses.replace(TRAIN, epochs=1)
        trainer = Trainer(tiny(domain, 4), domain, one_epoch, KDConfig(mode="none"), seed=4, device=CPU,
                          precision="fp32", generation="gen0")
        trainer.run(lambda report: None)
        return [p.detach().clone() for p in trainer.model.parameters()]

    assert all(torch.equal(a, b) for a, b in zip(weights(), weights(), strict=True))


def test_augmentation_crops_shift_images_within_the_padding(domain: ImageDomain) -> None:
    images = torch.arange(2 * 8 * 8, dtype=torch.uint8).view(2, 1, 8, 8)
    shifted = domain.augment(images, torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape
    for original, crop in zip(images, shifted, strict=True):
        matches = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                   if torch.equal(crop[0, 1:-1, 1:-1], original[0, 1 + dy:7 + dy, 1 + dx:7 + dx])]
        assert matches, "each crop is the image shifted by at most the padding"


def schedule(name: str, **options: object) -> tuple:
    train = TrainConfig(epochs=4, schedule=ScheduleConfig(name=name, **options))
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=train.optimizer.lr)
    return make_schedule(optimizer, train), optimizer


def test_step_schedule_multiplies_at_milestones() -> None:
    steps, optimizer = schedule("step", milestones=[1, 3], gamma=0.5)
    rates = []
    for _ in range(4):
        steps.step({})
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([0.05, 0.05, 0.025, 0.025])


def test_plateau_decays_unless_validation_perplexity_improves_enough() -> None:
    plateau, optimizer = schedule("plateau", gamma=0.5, min_improvement=0.5)
    for perplexity in (100.0, 99.0, 99.8, 90.0):  # first epoch; improved by 1; got worse; improved by 9.8
        plateau.step({"valid": {"nll": torch.tensor(perplexity).log().item()}})
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5)
    state = plateau.state_dict()
    assert state["lr"] == pytest.approx(0.05)


def test_batches_cover_the_training_set_once_per_epoch(domain: ImageDomain) -> None:
    batches: list[Batch] = list(domain.train_batches(torch.Generator().manual_seed(5)))
    assert sum(b.size for b in batches) == 200
    assert sorted(torch.cat([b.targets for b in batches]).tolist()) == sorted(domain.labels["train"].tolist())

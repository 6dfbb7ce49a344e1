"""The training loop on real (tiny) digits data, the frozen teacher and the schedules."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import pytest
import torch
from reference_losses import ban_loss
from torch import nn

from ban.core.config import (
    AugmentConfig,
    DataConfig,
    KDConfig,
    ScheduleConfig,
    TrainConfig,
    params_from_mapping,
)
from ban.core.errors import ConfigError
from ban.datasets import prepare_dataset
from ban.nets import build_model
from ban.training import schedules
from ban.training.domain import Batch
from ban.training.domains.image import ImageDomain
from ban.training.engine import FrozenTeacher, Trainer
from ban.training.schedules import SCHEDULES, make_schedule
from ban.validation.chain import check_chain

CPU = torch.device("cpu")
TRAIN = TrainConfig(epochs=3, batch_size=50, optimizer=dataclasses.replace(TrainConfig().optimizer, lr=0.05),
                    schedule=ScheduleConfig(name="step"), augment=AugmentConfig(crop_padding=0))


@pytest.fixture(scope="module")
def domain() -> ImageDomain:
    prepared = prepare_dataset(DataConfig(train_subset=200))
    return ImageDomain(prepared, TRAIN, CPU, "fp32")


def tiny_resnet(domain: ImageDomain, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("resnet", {"depth": 8, "width": 4}, **domain.data_arguments())


def test_frozen_teacher_stays_in_eval_mode_and_builds_no_graph(domain: ImageDomain) -> None:
    model = tiny_resnet(domain, 0)
    teacher = FrozenTeacher(model)
    teacher.train()
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    batch = next(domain.train_batches(torch.Generator().manual_seed(0)))
    logits = teacher(domain.runner(model), batch)
    assert not logits.requires_grad and not logits.is_inference()


def test_training_lowers_the_loss_and_reports_every_epoch(domain: ImageDomain) -> None:
    reports = []
    trainer = Trainer(tiny_resnet(domain, 1), domain, TRAIN, KDConfig(mode="none"), seed=1, device=CPU,
                      precision="fp32", generation="gen0")
    trainer.run(reports.append)
    assert [r.epoch for r in reports] == [1, 2, 3]
    assert reports[-1].train_loss < reports[0].train_loss
    assert set(reports[0].eval) == {"test"}
    errors = [report.eval["test"]["error"] for report in reports]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 60  # chance is 90%
    assert reports[0].analysis == {}  # no teacher, nothing to decompose


def test_student_loss_is_the_cross_entropy_to_its_own_teacher(domain: ImageDomain) -> None:
    """The loss of a step is computed from this teacher's outputs on this batch: another teacher gives
    another loss, and the teacher itself never changes."""
    batch = next(domain.train_batches(torch.Generator().manual_seed(0)))
    losses = {}
    for teacher_seed in (2, 5):
        teacher, student = tiny_resnet(domain, teacher_seed), tiny_resnet(domain, 3)
        before = {k: v.clone() for k, v in teacher.state_dict().items()}
        trainer = Trainer(student, domain, dataclasses.replace(TRAIN, epochs=1), KDConfig(mode="ban"), seed=3,
                          device=CPU, precision="fp32", generation="gen1", teacher=teacher)
        with torch.no_grad():
            expected = ban_loss(student.train()(batch.inputs), teacher.eval()(batch.inputs))
        figures = trainer.step(batch, domain.runner(student), domain.runner(trainer.teacher.model))
        losses[teacher_seed] = figures["loss/kd"].item() / batch.size  # the step returns the batch sums
        assert set(figures) >= {"loss/kd", "analysis/teacher_max_prob"} and "loss/label" not in figures
        assert losses[teacher_seed] == pytest.approx(expected.item(), rel=1e-6)
        assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert losses[2] != pytest.approx(losses[5], rel=1e-3)


def test_same_seed_same_weights(domain: ImageDomain) -> None:
    def weights() -> list[torch.Tensor]:
        one_epoch = dataclasses.replace(TRAIN, epochs=1)
        trainer = Trainer(tiny_resnet(domain, 4), domain, one_epoch, KDConfig(mode="none"), seed=4,
                          device=CPU, precision="fp32", generation="gen0")
        trainer.run(lambda report: None)
        return [p.detach().clone() for p in trainer.model.parameters()]

    assert all(torch.equal(a, b) for a, b in zip(weights(), weights(), strict=True))


def test_augmentation_crops_shift_images_within_the_padding() -> None:
    """With 1 pixel of zero padding, each crop is the image shifted by one of the 9 offsets (the border
    filled with zeros); over many images every offset occurs, the unshifted one included."""
    padded = TrainConfig(augment=AugmentConfig(crop_padding=1))
    domain = ImageDomain(prepare_dataset(DataConfig(train_subset=20)), padded, CPU, "fp32")
    images = (torch.arange(64, dtype=torch.uint8).view(1, 1, 8, 8) + 1).repeat(200, 1, 1, 1)  # no zeros
    crops = domain.augment(images, torch.Generator().manual_seed(0))
    assert crops.shape == images.shape
    framed = torch.nn.functional.pad(images[0, 0], (1, 1, 1, 1))
    offsets = []
    for crop in crops:
        found = [(dy, dx) for dy in range(3) for dx in range(3)
                 if torch.equal(crop[0], framed[dy:dy + 8, dx:dx + 8])]
        assert len(found) == 1, "each crop is the image shifted by at most the padding"
        offsets.append(found[0])
    assert len(set(offsets)) == 9 and offsets.count((1, 1)) < 100


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


def test_linear_warmup_cosine_rises_along_a_line_over_30_percent_of_the_epochs_then_falls_along_a_cosine(
) -> None:
    """10 epochs at base rate 0.1: epoch 1 at 0.004, up by 0.032 an epoch to 0.1 at epoch 4, then half a
    cosine over the 7 epochs left towards 0.1 / 25 / 10,000 (the crops study's schedule)."""
    train = TrainConfig(epochs=10, schedule=ScheduleConfig(name="linear_warmup_cosine"))
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=train.optimizer.lr)
    cycle = make_schedule(optimizer, train, batches_per_epoch=3)
    rates = [optimizer.param_groups[0]["lr"]]
    for _ in range(9):
        for _ in range(3):
            cycle.step_batch()  # an epoch's batches leave a schedule by epoch where it was
        cycle.step({})
        rates.append(optimizer.param_groups[0]["lr"])
    end = 0.004 / 1e4
    falling = [end + (0.1 - end) * 0.5 * (1 + math.cos(math.pi * k / 7)) for k in (1, 2, 3, 4, 5, 6)]
    assert rates == pytest.approx([0.004, 0.036, 0.068, 0.1, *falling])
    assert train.optimizer.lr == 0.1 and rates[-1] < 0.01


def one_cycle_run(epochs: int, batches: int, share: float, resume_after: int | None = None) -> list[float]:
    """The rate of every batch of ``onecycle``, stepped as the trainer steps it (after each batch, and
    after each epoch's evaluation); with ``resume_after`` epochs, continued by a new schedule from the
    saved state, as a resumed run is."""
    train = TrainConfig(epochs=epochs, schedule=ScheduleConfig(name="onecycle", warmup_share=share))
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=train.optimizer.lr, momentum=0.9)
    cycle = make_schedule(optimizer, train, batches)
    rates = []
    for epoch in range(epochs):
        if epoch == resume_after:
            optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=train.optimizer.lr, momentum=0.9)
            saved, cycle = cycle.state_dict(), make_schedule(optimizer, train, batches)
            cycle.load_state_dict(saved)
        for _ in range(batches):
            rates.append(optimizer.param_groups[0]["lr"])
            cycle.step_batch()
        cycle.step({})
    assert optimizer.param_groups[0]["momentum"] == 0.9, "the momentum is not cycled"
    return rates


def pytorch_one_cycle(epochs: int, batches: int, share: float, max_lr: float = 0.1) -> list[float]:
    """The rates of PyTorch's OneCycleLR with its defaults (momentum aside), stepped after every batch."""
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=max_lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, epochs=epochs,
                                                    steps_per_epoch=batches, pct_start=share,
                                                    cycle_momentum=False)
    rates = []
    for _ in range(epochs * batches):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


@pytest.mark.parametrize(("epochs", "batches", "share"), [(10, 1, 0.3), (10, 7, 0.3), (3, 40, 0.3),
                                                          (12, 5, 0.25), (5, 11, 0.5), (120, 4, 0.3)])
def test_onecycle_is_pytorchs_one_cycle_lr_at_every_batch(epochs: int, batches: int, share: float) -> None:
    expected = pytorch_one_cycle(epochs, batches, share)
    assert one_cycle_run(epochs, batches, share) == pytest.approx(expected, rel=1e-12, abs=0)
    assert expected[0] == pytest.approx(0.1 / 25) and max(expected) == pytest.approx(0.1, rel=1e-2)


@pytest.mark.parametrize(("epochs", "batches", "share", "resume_after"), [(10, 7, 0.3, 2), (6, 9, 0.4, 5)])
def test_onecycle_resumed_from_saved_state_continues_as_pytorchs(epochs: int, batches: int, share: float,
                                                                 resume_after: int) -> None:
    assert one_cycle_run(epochs, batches, share, resume_after) == pytest.approx(
        pytorch_one_cycle(epochs, batches, share), rel=1e-12, abs=0)


def test_onecycle_in_the_trainer_follows_pytorch_batch_by_batch_across_a_resume(domain: ImageDomain) -> None:
    """The rate of every optimiser step of a 3-epoch run (4 batches an epoch) is OneCycleLR's, and a run
    resumed from the state saved after epoch 1 takes the same rates for the steps left."""
    train = dataclasses.replace(TRAIN, schedule=ScheduleConfig(name="onecycle"))

    def trainer(rates: list[float]) -> Trainer:
        made = Trainer(tiny_resnet(domain, 6), domain, train, KDConfig(mode="none"), seed=6, device=CPU,
                       precision="fp32", generation="gen0")
        made.optimizer.register_step_pre_hook(
            lambda optimizer, *_: rates.append(optimizer.param_groups[0]["lr"]))
        return made

    whole, resumed, saved = [], [], {}
    first = trainer(whole)
    first.run(lambda report: saved.update(copy.deepcopy(first.state_dict())) if report.epoch == 1 else None)
    second = trainer(resumed)
    second.load_state_dict(saved)
    second.run(lambda report: None)
    expected = pytorch_one_cycle(3, domain.train_steps(), 0.3, max_lr=train.optimizer.lr)
    assert domain.train_steps() == 4
    assert whole == pytest.approx(expected, rel=1e-12, abs=0)
    assert resumed == pytest.approx(expected[4:], rel=1e-12, abs=0)


def test_plateau_decays_unless_validation_perplexity_improves_enough() -> None:
    plateau, optimizer = schedule("plateau", gamma=0.5, min_improvement=0.5)
    for perplexity in (100.0, 99.0, 99.8, 90.0):  # first epoch; improved by 1; got worse; improved by 9.8
        plateau.step({"valid": {"nll": torch.tensor(perplexity).log().item()}})
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5)
    state = plateau.state_dict()
    assert state["lr"] == pytest.approx(0.05)


@pytest.mark.parametrize(("train", "has_validation", "error"), [
    ({"schedule": {"name": "cosin"}}, True,
     "train.schedule.name: unknown schedule 'cosin'; valid: constant, cosine, linear_warmup_cosine, "
     "onecycle, plateau, step"),
    ({"schedule": {"name": "plateau"}, "eval_every": 2}, True,
     "train.eval_every: the plateau schedule decides after every epoch on the validation split; set it to 1 "
     "(got 2)"),
    ({"schedule": {"name": "plateau"}}, False,
     "train.schedule.name: 'plateau' decides on a validation split, and this data has none (set "
     "data.validation to hold out training images)"),
])
def test_a_schedule_is_checked_by_its_registry_entry(train: dict, has_validation: bool, error: str) -> None:
    params = params_from_mapping({"train": train})
    with pytest.raises(ConfigError) as refused:
        check_chain(params, "image", has_validation)
    assert str(refused.value) == error


def test_the_schedules_are_the_modules_of_their_package() -> None:
    modules = {path.stem for path in Path(schedules.__file__).parent.glob("*.py")} - {"__init__"}
    assert SCHEDULES.names() == sorted(modules) == ["constant", "cosine", "linear_warmup_cosine", "onecycle",
                                                    "plateau", "step"]


def test_batches_cover_the_training_set_once_per_epoch(domain: ImageDomain) -> None:
    batches: list[Batch] = list(domain.train_batches(torch.Generator().manual_seed(5)))
    assert sum(b.size for b in batches) == 200
    assert sorted(torch.cat([b.targets for b in batches]).tolist()) == sorted(domain.labels["train"].tolist())

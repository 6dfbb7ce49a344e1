"""What the engine logs as the gradient decomposition of an epoch equals a hand computation.

With a learning rate of 0 the student does not change, so its logits on the training images can be
computed once, by hand, and every epoch must log the same values. One batch per epoch keeps the
batch-norm statistics of the hand computation those of the training step; a linear student (no batch
norm) checks that batches of unequal size are weighted by their size.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ban.core.config import (
    AugmentConfig,
    DataConfig,
    KDConfig,
    OptimizerConfig,
    TrainConfig,
    params_from_mapping,
)
from ban.data.prepared import Prepared
from ban.datasets import prepare_dataset
from ban.nets import build_model
from ban.objectives import learns_from_teacher
from ban.training.domains.image import ImageDomain
from ban.training.engine import Trainer
from ban.training.generation import epoch_record, load_teacher

CPU = torch.device("cpu")
SIZE = 120
NO_AUGMENTATION = AugmentConfig(crop_padding=0)  # the hand computation sees the images as prepared
PER_EXAMPLE = ("true_class_grad", "dark_knowledge_grad", "teacher_true_prob", "teacher_max_prob")


@pytest.fixture(scope="module")
def prepared() -> Prepared:
    return prepare_dataset(DataConfig(train_subset=SIZE))


def logged(prepared: Prepared, student: nn.Module, teacher: nn.Module, batch_size: int,
           epochs: int = 2) -> tuple[list[dict[str, float]], ImageDomain]:
    """The records ``stages.train`` logs to DVCLive, one per epoch, from a run with lr 0."""
    train = TrainConfig(epochs=epochs, batch_size=batch_size, optimizer=OptimizerConfig(lr=0.0),
                        augment=NO_AUGMENTATION)
    domain = ImageDomain(prepared, train, CPU, "fp32")
    trainer = Trainer(student, domain, train, KDConfig(mode="ban"), seed=0, device=CPU, precision="fp32",
                      generation="gen1", teacher=teacher)
    records: list[dict[str, float]] = []
    trainer.run(lambda report: records.append(epoch_record(report)))
    return records, domain


def by_hand(z: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Section 3.2 of the paper, written out: the parts of q - p and the teacher's confidences."""
    q, p = z.double().softmax(1), t.double().softmax(1)
    rows = torch.arange(len(y))
    gradient = q - p
    others = gradient.clone()
    others[rows, y] = 0
    confidence = p.max(1).values
    scaled = len(y) * confidence / confidence.sum()
    return {"true_class_grad": gradient[rows, y].abs().mean().item(),
            "dark_knowledge_grad": others.pow(2).sum(1).sqrt().mean().item(),
            "teacher_true_prob": p[rows, y].mean().item(),
            "teacher_max_prob": confidence.mean().item(),
            "cwtm_weight_std": (scaled - scaled.mean()).pow(2).mean().sqrt().item()}


def logits(model: nn.Module, domain: ImageDomain, training: bool) -> torch.Tensor:
    model.train(training)
    with torch.no_grad():
        return model(domain.normalise(domain.images["train"]))


def resnet(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("resnet", {"depth": 8, "width": 4}, in_channels=1, num_classes=10)


def test_one_batch_epochs_log_the_hand_computed_decomposition(prepared: Prepared) -> None:
    student, teacher = resnet(0), resnet(1)
    records, domain = logged(prepared, student, teacher, batch_size=SIZE)
    hand = by_hand(logits(student, domain, training=True), logits(teacher, domain, training=False),
                   domain.labels["train"])
    assert len(records) == 2
    for record in records:
        for name, value in hand.items():
            assert record[f"analysis/{name}"] == pytest.approx(value, rel=1e-5), name


def test_unequal_batches_are_weighted_by_their_size(prepared: Prepared) -> None:
    torch.manual_seed(0)
    student = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    records, domain = logged(prepared, student, teacher, batch_size=50, epochs=1)  # batches 50, 50, 20
    hand = by_hand(logits(student, domain, training=True), logits(teacher, domain, training=False),
                   domain.labels["train"])
    for name in PER_EXAMPLE:
        assert records[0][f"analysis/{name}"] == pytest.approx(hand[name], rel=1e-5), name


def test_a_control_student_runs_no_teacher_and_logs_no_decomposition(prepared: Prepared) -> None:
    """``learns_from_teacher`` decides, once, which generations load and run their teacher: a control
    (``kd.mode: none``) has a teacher in the chain but never reads it."""
    params = params_from_mapping({"students": {"gen1": {"teacher": "gen0"},
                                               "control": {"teacher": "gen0", "kd": {"mode": "none"}}}})
    control = params.generation("control")
    assert [learns_from_teacher(params.generation(name)) for name in ("gen0", "gen1", "control")] == [
        False, True, False]
    assert load_teacher(control, domain=None, build=None) is None  # no checkpoint is read
    train = TrainConfig(epochs=1, batch_size=SIZE, optimizer=OptimizerConfig(lr=0.0),
                        augment=NO_AUGMENTATION)
    domain = ImageDomain(prepared, train, CPU, "fp32")
    trainer = Trainer(resnet(0), domain, train, control.kd, seed=0, device=CPU, precision="fp32",
                      generation="control", teacher=None)
    records: list[dict[str, float]] = []
    trainer.run(lambda report: records.append(epoch_record(report)))
    assert not [key for key in records[0] if key.startswith("analysis/")]
    assert math.isfinite(records[0]["train/loss_label"])

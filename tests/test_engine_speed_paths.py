"""The engine's fast paths: device and precision choice, on-device augmentation, sharding, teacher dtype."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ban.core.config import AugmentConfig, DataConfig, KDConfig, TrainConfig
from ban.core.errors import ConfigError
from ban.datasets import prepare_dataset
from ban.training.device import cpu_has_fast_bf16, resolve_device, resolve_precision
from ban.training.domains.image import ImageDomain
from ban.training.engine import Trainer

CPU = torch.device("cpu")
no_accelerator = pytest.mark.skipif(torch.cuda.is_available() or torch.backends.mps.is_available(),
                                    reason="falls back only where the accelerator is missing")


@pytest.fixture(scope="module")
def digits():
    return prepare_dataset(DataConfig(train_subset=200))


def domain(prepared, padding: int = 0, hflip: bool = False, batch_size: int = 50,
           precision: str = "fp32") -> ImageDomain:
    train = TrainConfig(batch_size=batch_size, augment=AugmentConfig(crop_padding=padding, hflip=hflip))
    return ImageDomain(prepared, train, CPU, precision)


# --- device and precision ------------------------------------------------------------------------


@no_accelerator
@pytest.mark.parametrize("requested", ["cuda", "mps"])
def test_missing_accelerator_falls_back_to_cpu_with_one_log_line(requested, caplog):
    with caplog.at_level(logging.INFO, logger="ban.device"):
        assert resolve_device(requested) == CPU
    assert [r.getMessage() for r in caplog.records] == \
        [f"train.device={requested} is not available here: training on the CPU"]


@no_accelerator
def test_auto_device_is_the_cpu_here_without_a_log_line(caplog):
    with caplog.at_level(logging.INFO, logger="ban.device"):
        assert resolve_device("auto") == CPU
    assert caplog.records == []


def test_auto_precision_on_cpu_follows_the_bf16_hardware():
    assert resolve_precision("auto", CPU) == ("bf16" if cpu_has_fast_bf16() else "fp32")
    assert resolve_precision("fp32", CPU) == "fp32" and resolve_precision("bf16", CPU) == "bf16"


def test_bf16_on_mps_is_refused():
    with pytest.raises(ConfigError, match="train.precision"):
        resolve_precision("bf16", torch.device("mps"))


# --- augmentation and batches --------------------------------------------------------------------


def test_crops_are_windows_of_the_padded_image_at_every_offset(digits):
    images = domain(digits).images["train"]
    generator = torch.Generator().manual_seed(0)
    padding = 2
    crops = domain(digits, padding=padding).augment(images, generator)
    padded = F.pad(images, (padding,) * 4)
    offsets = set()
    for image, crop in zip(padded, crops, strict=True):
        found = [(top, left) for top in range(2 * padding + 1) for left in range(2 * padding + 1)
                 if torch.equal(image[:, top:top + 8, left:left + 8], crop)]
        assert found, "a crop is not a window of its padded image"
        offsets.update(found)
    assert len(offsets) == (2 * padding + 1) ** 2  # 200 draws reach all 25 offsets


def test_flips_mirror_about_half_of_the_images(digits):
    images = domain(digits).images["train"][:200]
    flipped = domain(digits, hflip=True).augment(images, torch.Generator().manual_seed(0))
    pairs = list(zip(images, flipped, strict=True))
    mirrored = [torch.equal(a.flip(2), b) and not torch.equal(a, b) for a, b in pairs]
    assert all(m or torch.equal(a, b) for m, (a, b) in zip(mirrored, pairs, strict=True))
    assert 70 < sum(mirrored) < 130


def test_augmentation_depends_only_on_the_generator_seed(digits):
    augmenting = domain(digits, padding=1, hflip=True)
    images = augmenting.images["train"]
    first, second, other = (augmenting.augment(images, torch.Generator().manual_seed(s)) for s in (3, 3, 4))
    assert torch.equal(first, second) and not torch.equal(first, other)


def test_ranks_split_each_global_batch_into_disjoint_shares(digits):
    """Two ranks together see exactly the examples, crops and flips of one process."""
    sharded = domain(digits, padding=1, hflip=True, batch_size=50)
    whole = list(sharded.train_batches(torch.Generator().manual_seed(5)))
    shares = [list(sharded.train_batches(torch.Generator().manual_seed(5), rank, 2)) for rank in (0, 1)]
    assert [len(b.targets) for b in whole] == [50] * 4
    for batch, first, second in zip(whole, *shares, strict=True):
        assert len(first.targets) == len(second.targets) == 25
        torch.testing.assert_close(torch.stack([first.inputs, second.inputs], 1).flatten(0, 1), batch.inputs)
        assert torch.equal(torch.stack([first.targets, second.targets], 1).flatten(), batch.targets)


def test_a_last_batch_smaller_than_the_world_is_dropped(digits):
    batches = domain(digits, batch_size=66)  # 200 = 3 * 66 + 2
    assert [len(b.targets) for b in batches.train_batches(torch.Generator(), 0, 1)] == [66, 66, 66, 2]
    assert [len(b.targets) for b in batches.train_batches(torch.Generator(), 0, 3)] == [22, 22, 22]


# --- the teacher predicts in the student's precision ---------------------------------------------


def tiny_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 10))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_teacher_forward_runs_in_the_training_precision(digits, precision):
    teacher, seen = tiny_net(1), []
    teacher[0].register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    batches = domain(digits, precision=precision)
    trainer = Trainer(tiny_net(0), batches, TrainConfig(batch_size=50), KDConfig(mode="ban"), seed=0,
                      device=CPU, precision=precision, generation="gen1", teacher=teacher)
    report = trainer.train_epoch()
    assert seen == [torch.bfloat16 if precision == "bf16" else torch.float32] * 4
    assert report.losses["kd"] > 0 and not teacher.training

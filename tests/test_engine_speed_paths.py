"""The engine's fast paths: device and precision choice, on-device augmentation, sharding, teacher dtype."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from builders import tiny_conv_net
from project import ROOT

from ban.core.config import AugmentConfig, DataConfig, KDConfig, TrainConfig
from ban.core.errors import ConfigError, DataError
from ban.data.prepared import Prepared, save_prepared
from ban.datasets import prepare_dataset
from ban.training.device import (
    check_fits,
    cpu_has_fast_bf16,
    cuda_problem,
    first_line,
    resolve_device,
    resolve_precision,
    runs_architecture,
)
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
def test_asking_for_a_missing_accelerator_stops_instead_of_training_on_the_cpu(requested):
    with pytest.raises(ConfigError) as stopped:
        resolve_device(requested)
    message = str(stopped.value)
    assert message.startswith(f"train.device: {requested} cannot train here: ") and "\n" not in message
    assert message.endswith("; use train.device: cpu (or auto)") and stopped.value.exit_code == 2


@no_accelerator
def test_auto_device_says_which_device_and_why(caplog):
    with caplog.at_level(logging.INFO, logger="ban.training.device"):
        assert resolve_device("auto") == CPU
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and said[0].startswith("train.device auto: cpu (cuda: ")
    assert said[0] == f"train.device auto: cpu (cuda: {cuda_problem()})"  # the reason CUDA gave


def test_cuda_reasons_are_the_first_sentence_of_what_cuda_said():
    assert first_line(RuntimeError("Found no NVIDIA driver on your system. Please check that you have an "
                                   "NVIDIA GPU and installed a driver from http://www.nvidia.com/x.aspx")) \
        == "Found no NVIDIA driver on your system"
    assert first_line(RuntimeError("The NVIDIA driver on your system is too old (found version 11040). "
                                   "Please update your GPU driver")) \
        == "The NVIDIA driver on your system is too old (found version 11040)"


@pytest.mark.parametrize(("capability", "built", "runs"), [
    ((8, 6), ["sm_80"], True),  # binary compatible within a major version
    ((8, 0), ["sm_86"], False),  # but not downwards
    ((7, 5), ["sm_80", "sm_90"], False),  # an old GPU a new build dropped
    ((12, 0), ["sm_90", "compute_90"], True),  # PTX, compiled for newer GPUs when loaded
    ((12, 0), ["sm_90a", "sm_100"], False),
    ((10, 0), ["sm_100"], True),
])
def test_a_gpu_runs_only_architectures_the_build_has_kernels_for(capability, built, runs):
    assert runs_architecture(*capability, built) is runs


def test_fp16_is_refused_off_cuda_with_one_line():
    with pytest.raises(ConfigError) as stopped:
        resolve_precision("fp16", CPU)
    assert str(stopped.value) == ("train.precision: fp16 (with loss scaling) is for CUDA devices, not cpu; "
                                  "use fp32 or bf16")


def test_data_that_does_not_fit_the_gpu_is_refused_before_it_moves():
    check_fits(2**30, 2 * 2**30, 80 * 2**30, "NVIDIA H100")  # fits: nothing happens
    with pytest.raises(DataError) as stopped:
        check_fits(3 * 2**30, 2 * 2**30, 16 * 2**30, "Tesla T4, sm_75")
    assert str(stopped.value).startswith("the prepared data (3.00 GiB) does not fit in the free memory of "
                                         "the GPU (Tesla T4, sm_75: 2.00 GiB free of 16.00 GiB)")


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


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_teacher_forward_runs_in_the_training_precision(digits, precision):
    teacher, seen = tiny_conv_net(1), []
    teacher[0].register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    batches = domain(digits, precision=precision)
    trainer = Trainer(tiny_conv_net(0), batches, TrainConfig(batch_size=50), KDConfig(mode="ban"), seed=0,
                      device=CPU, precision=precision, generation="gen1", teacher=teacher)
    report = trainer.train_epoch()
    assert seen == [torch.bfloat16 if precision == "bf16" else torch.float32] * 4
    assert report.losses["kd"] > 0 and not teacher.training


# --- fp16 with loss scaling ----------------------------------------------------------------------


class Stop(Exception):
    """Ends a run after an epoch, as an interruption would."""


def fp16_trainer(digits) -> Trainer:
    return Trainer(tiny_conv_net(0), domain(digits, precision="fp16"), TrainConfig(epochs=2, batch_size=50),
                   KDConfig(mode="none"), seed=0, device=CPU, precision="fp16", generation="gen0")


def test_fp16_steps_go_through_a_loss_scaler(digits):
    """A scale so large that every scaled gradient overflows fp16: each step is skipped and the scale
    backs off, instead of the weights taking infinite steps (CPU autocast has fp16 too)."""
    trainer = fp16_trainer(digits)
    before = {name: value.clone() for name, value in trainer.model.state_dict().items()}
    trainer.scaler.load_state_dict({**trainer.scaler.state_dict(), "scale": 2.0**100})
    trainer.train_epoch()  # 4 steps
    assert trainer.scaler.get_scale() == 2.0**96
    assert all(torch.equal(before[name], value) for name, value in trainer.model.state_dict().items())
    trainer.train_epoch()  # the scale keeps backing off until gradients are finite
    assert trainer.scaler.get_scale() < 2.0**96


def test_fp16_resumes_bit_for_bit_with_its_loss_scale(digits):
    whole = fp16_trainer(digits)
    whole.run(lambda report: None)
    first, saved = fp16_trainer(digits), []

    def save_and_stop(report) -> None:
        saved.append(first.state_dict())
        raise Stop

    with pytest.raises(Stop):
        first.run(save_and_stop)
    assert saved[0]["scaler"]["scale"] == 2.0**16  # the scaler's state travels with the epoch
    resumed = fp16_trainer(digits)
    resumed.load_state_dict(saved[0])
    resumed.run(lambda report: None)
    for name, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name


def test_prepared_data_is_memory_mapped_not_read_whole(tmp_path):
    """150 MB of images: loading them maps the file (each rank of a data-parallel run would otherwise
    hold a copy), so a process's resident memory grows by what it touches, not by the file's size."""
    images = torch.zeros(50_000, 3, 32, 32, dtype=torch.uint8)
    images[-1] = 7
    meta = {"task": "image", "name": "random", "classes": [str(c) for c in range(10)], "mean": [0.5] * 3,
            "std": [0.25] * 3, "shape": [3, 32, 32]}
    labels = torch.arange(50_000) % 10
    save_prepared(tmp_path, Prepared(meta, {"train_x": images, "train_y": labels, "test_x": images[:10],
                                            "test_y": labels[:10]}))
    script = ("import resource, sys, torch; from ban.data.prepared import load_prepared\n"
              "def resident(): return int(open('/proc/self/statm').read().split()[1]) * "
              "resource.getpagesize()\n"
              "before = resident()\n"
              "images = load_prepared(sys.argv[1]).tensors['train_x']\n"
              "assert images.shape == (50000, 3, 32, 32) and int(images[-1].max()) == 7\n"
              "print((resident() - before) // 2**20)")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, text=True,
                            capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) < 40  # MB; reading the file whole takes 150

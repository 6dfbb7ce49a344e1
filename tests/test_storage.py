"""``data.storage``: the same training read from memory or streamed from the prepared files.

Streamed batches are gathered on the host in a background thread; every random draw stays on the
training thread, so the weights and figures must match memory bit for bit: on the digits, on an
ImageFolder of real JPEG files (train/ and val/, ImageNet's layout), with every augmentation on, and
under DDP with gloo, where each rank gathers only its own share of every batch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image
from project import make_project, run, stages_run
from stage_process import prepare, run_here, train
from torchvision.transforms import CenterCrop, Resize

import ban.training.domains.image as image_domain
from ban.core.config import (
    AugmentConfig,
    DataConfig,
    KDConfig,
    ResizedCropConfig,
    TrainConfig,
    params_from_mapping,
)
from ban.core.errors import ConfigError, DataError
from ban.data.prepared import load_prepared, save_prepared
from ban.datasets import prepare_dataset, write_prepared
from ban.nets import build_model
from ban.training import streaming
from ban.training.distributed import distribute, start_process_group
from ban.training.domains.image import ImageDomain
from ban.training.domains.text import TextDomain
from ban.training.engine import Trainer
from ban.training.streaming import MEMORY_SHARE, resolve_storage
from stages import prepare as prepare_stage

CPU = torch.device("cpu")
AUGMENT = AugmentConfig(crop_padding=1, hflip=True, random_resized_crop=ResizedCropConfig())
TRAIN = TrainConfig(epochs=2, batch_size=32, eval_batch_size=50, augment=AUGMENT, precision="fp32")


def write_jpegs(root: Path, per_class: dict[str, int], seed: int = 0) -> None:
    """Real JPEG files of varied sizes and aspect ratios in ``root/<split>/<class>/*.JPEG``."""
    rng = np.random.default_rng(seed)
    for split, count in per_class.items():
        for name in ("n01440764", "n01443537", "n01484850"):
            for index in range(count):
                height, width = rng.integers(10, 20, size=2)
                pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                path = root / split / name / f"{name}_{index}.JPEG"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(path, quality=90)


def prepared_on_disk(directory: Path, data: DataConfig) -> Path:
    write_prepared(data, directory)
    return directory


def train_tiny(directory: Path, storage: str, train: TrainConfig = TRAIN, rank: int = 0,
               world: int = 1) -> dict[str, Any]:
    """Two epochs of a small ResNet (gen1, learning from a random frozen teacher) on mapped prepared data."""
    prepared = load_prepared(directory)
    domain = ImageDomain(prepared, train, CPU, "fp32", storage=storage)
    assert domain.storage == storage
    torch.manual_seed(0)
    model = build_model("resnet", {"depth": 8, "width": 4}, **domain.data_arguments())
    teacher = build_model("resnet", {"depth": 8, "width": 4}, **domain.data_arguments())
    trainer = Trainer(distribute(model, CPU, world), domain, train, KDConfig(), seed=0, device=CPU,
                      precision="fp32", generation="gen1", teacher=teacher, rank=rank, world=world)
    reports: list[Any] = []
    trainer.run(reports.append)
    figures = [{"loss": r.train_loss, "error": r.train_error, **r.losses, **r.analysis, **r.eval["test"]}
               for r in reports]
    predictions = trainer.final_predictions()["test"].probs if rank == 0 else None
    return {"weights": model.state_dict(), "figures": figures, "predictions": predictions}


def assert_same_training(one: dict[str, Any], other: dict[str, Any]) -> None:
    for name, value in one["weights"].items():
        assert torch.equal(other["weights"][name], value), name
    assert one["figures"] == other["figures"]
    assert torch.equal(one["predictions"], other["predictions"])


def test_digits_train_the_same_in_memory_and_streamed(tmp_path):
    directory = prepared_on_disk(tmp_path / "prepared", DataConfig(train_subset=150))
    memory, stream = train_tiny(directory, "memory"), train_tiny(directory, "stream")
    assert_same_training(memory, stream)
    assert memory["figures"][-1]["loss"] < memory["figures"][0]["loss"]  # it did learn


def test_imagefolder_jpegs_train_the_same_in_memory_and_streamed(tmp_path):
    write_jpegs(tmp_path / "raw", {"train": 12, "val": 4})
    data = DataConfig(name="imagefolder", root=str(tmp_path / "raw"), image_size=12, validation=3)
    directory = prepared_on_disk(tmp_path / "prepared", data)
    assert {path.name for path in directory.iterdir()} == {"meta.json", "tensors.pt", "train_x.npy",
                                                           "valid_x.npy", "test_x.npy"}
    assert_same_training(train_tiny(directory, "memory"), train_tiny(directory, "stream"))


def test_streamed_epochs_read_the_examples_of_the_memory_order(tmp_path):
    """Not only the outcome: each streamed batch holds exactly the images and labels memory yields."""
    directory = prepared_on_disk(tmp_path / "prepared", DataConfig(train_subset=100))
    prepared = load_prepared(directory)
    batches = {}
    for storage in ("memory", "stream"):
        settings = dataclasses.replace(TRAIN, batch_size=30)
        domain = ImageDomain(prepared, settings, CPU, "fp32", storage=storage)
        batches[storage] = list(domain.train_batches(torch.Generator().manual_seed(3)))
    assert [len(batch.targets) for batch in batches["stream"]] == [30, 30, 30, 10]
    for memory, stream in zip(batches["memory"], batches["stream"], strict=True):
        assert torch.equal(memory.inputs, stream.inputs) and torch.equal(memory.targets, stream.targets)


def test_streamed_images_stay_in_their_files(tmp_path):
    """The training images' memory is a mapping of train_x.npy (Linux's /proc/self/maps), not a copy."""
    directory = prepared_on_disk(tmp_path / "prepared", DataConfig(train_subset=100))
    domain = ImageDomain(load_prepared(directory), TRAIN, CPU, "fp32", storage="stream")
    address = domain.images["train"].data_ptr()
    mappings = [line.split() for line in Path("/proc/self/maps").read_text().splitlines()]
    holding = [fields[-1] for fields in mappings
               if int(fields[0].split("-")[0], 16) <= address < int(fields[0].split("-")[1], 16)]
    assert holding == [str(directory / "train_x.npy")]


def test_a_failure_while_gathering_reaches_the_training_thread():
    source = torch.zeros(10, 1, 2, 2, dtype=torch.uint8)
    rows = [torch.tensor([0, 1]), torch.tensor([11])]  # the second batch indexes past the end
    batches = streaming.streamed(source, rows, CPU)
    assert next(batches).shape == (2, 1, 2, 2)
    with pytest.raises(IndexError):
        next(batches)


def test_auto_streams_what_exceeds_the_documented_share_of_memory():
    ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert resolve_storage("auto", int(MEMORY_SHARE * ram), CPU) == "memory"
    assert resolve_storage("auto", int(MEMORY_SHARE * ram) + 1, CPU) == "stream"
    assert resolve_storage("memory", 10 * ram, CPU) == "memory"
    assert resolve_storage("stream", 1, CPU) == "stream"


def test_an_unknown_storage_is_one_line():
    with pytest.raises(ConfigError) as error:
        params_from_mapping({"data": {"storage": "disk"}})
    assert str(error.value) == "data.storage: unknown value 'disk'; valid: auto, memory, stream"


def test_language_model_data_refuses_stream_in_one_line(tmp_path):
    message = ("data.storage: stream: a text corpus is always held in memory (its prepared form is small); "
               "use auto or memory")
    with pytest.raises(ConfigError) as error:
        prepare_dataset(DataConfig(name="ptb", root=str(tmp_path), storage="stream"))
    assert str(error.value) == message
    with pytest.raises(ConfigError) as error:
        TextDomain(None, TrainConfig(), CPU, "fp32", storage="stream")  # refused before reading anything
    assert str(error.value) == message


def test_the_prepare_stage_refuses_stream_for_text_and_writes_nothing(tmp_path):
    (tmp_path / "params.yaml").write_text("data: {name: ptb, storage: stream}\n")
    status, stderr = run_here(tmp_path, prepare_stage.main, [])
    assert status == 2
    assert stderr.strip().splitlines() == ["error: data.storage: stream: a text corpus is always held in "
                                           "memory (its prepared form is small); use auto or memory"]
    assert not (tmp_path / "data").exists()


def test_imagefolder_prepares_imagenet_layout_resized_like_torchvision(tmp_path, monkeypatch):
    """Shorter side to data.image_size, then the centre square: torchvision's Resize + CenterCrop of the
    decoded JPEG; written in chunks of 5 images with the same result as the whole."""
    write_jpegs(tmp_path / "raw", {"train": 7, "val": 2})
    monkeypatch.setattr("ban.datasets.imagefolder.CHUNK", 5)
    data = DataConfig(name="imagefolder", root=str(tmp_path / "raw"), image_size=8)
    prepared = prepare_dataset(data)
    assert prepared.tensors["train_x"].shape == (21, 3, 8, 8)
    assert prepared.tensors["test_x"].shape == (6, 3, 8, 8)
    assert prepared.meta["classes"] == ["n01440764", "n01443537", "n01484850"]
    transform = CenterCrop(8)
    paths = sorted((tmp_path / "raw" / "val").rglob("*.JPEG"))
    for path, image in zip(paths, prepared.tensors["test_x"], strict=True):
        expected = np.array(transform(Resize(8)(Image.open(path).convert("RGB"))))
        assert torch.equal(image, torch.from_numpy(expected).permute(2, 0, 1)), path
    assert prepared.tensors["test_y"].tolist() == [0, 0, 1, 1, 2, 2]


def test_chunked_prepare_equals_splitting_the_whole_in_memory(tmp_path, monkeypatch):
    """The validation split, subset and statistics decided from labels alone, chunk by chunk, are those of
    the in-memory path (``finish_images``) applied to every image at once."""
    from ban.data.images import finish_images

    write_jpegs(tmp_path / "raw", {"train": 10, "val": 2})
    data = DataConfig(name="imagefolder", root=str(tmp_path / "raw"), image_size=6, validation=6,
                      train_subset=15)
    monkeypatch.setattr("ban.datasets.imagefolder.CHUNK", 4)
    chunked = prepare_dataset(data)
    whole = prepare_dataset(dataclasses.replace(data, validation=None, train_subset=None))
    expected = finish_images("imagefolder", whole.meta["classes"], dict(whole.tensors), data)
    assert chunked.tensors.keys() == expected.tensors.keys()
    for name, tensor in expected.tensors.items():
        assert torch.equal(chunked.tensors[name], tensor), name
    assert chunked.meta == expected.meta


def test_prepare_shows_progress_on_stderr(tmp_path, monkeypatch, capsys):
    write_jpegs(tmp_path / "raw", {"train": 4, "val": 2})
    monkeypatch.setattr("ban.datasets.imagefolder.CHUNK", 2)
    monkeypatch.setenv("BAN_PROGRESS_SECONDS", "0")
    prepared_on_disk(tmp_path / "prepared", DataConfig(name="imagefolder", root=str(tmp_path / "raw"),
                                                       image_size=6))
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(line.startswith("prepare imagefolder (6x6)  ") and " left" in line for line in lines)
    assert "img/s" in lines[0] and "/9 steps" in lines[0]  # 6 + 3 chunks of two images (the last of one)


def test_an_interrupted_prepare_leaves_the_old_data(tmp_path):
    directory = prepared_on_disk(tmp_path / "prepared", DataConfig(train_subset=100))
    before = sorted((path.name, path.read_bytes()) for path in directory.iterdir())
    (tmp_path / "raw" / "train" / "a").mkdir(parents=True)
    (tmp_path / "raw" / "val" / "a").mkdir(parents=True)
    (tmp_path / "raw" / "train" / "a" / "0.JPEG").write_bytes(b"not a jpeg")
    Image.new("RGB", (4, 4)).save(tmp_path / "raw" / "val" / "a" / "0.JPEG")
    with pytest.raises(Exception, match="cannot read image"):
        write_prepared(DataConfig(name="imagefolder", root=str(tmp_path / "raw"), image_size=4), directory)
    assert sorted((path.name, path.read_bytes()) for path in directory.iterdir()) == before
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


def test_save_prepared_writes_images_as_mappable_arrays(tmp_path):
    prepared = prepare_dataset(DataConfig(train_subset=100))
    save_prepared(tmp_path / "prepared", prepared)
    assert np.load(tmp_path / "prepared" / "train_x.npy").shape == (100, 1, 8, 8)
    loaded = load_prepared(tmp_path / "prepared")
    for name, tensor in prepared.tensors.items():
        assert torch.equal(loaded.tensors[name], tensor), name


# -- processes ----------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rank_process(rank: int, world: int, port: int, directory: Path) -> None:
    """One gloo rank training from memory, then streamed; counts the training images it gathers."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    start_process_group(CPU)
    gathered = []
    original = streaming.streamed

    def counting(source: torch.Tensor, rows: Any, device: torch.device) -> Any:
        rows = list(rows)
        if isinstance(rows[0], torch.Tensor):  # training batches (evaluation reads slices, on rank 0)
            gathered.append([len(index) for index in rows])
        return original(source, rows, device)

    image_domain.streamed = counting
    results = {storage: train_tiny(directory / "prepared", storage, DDP_TRAIN, rank, world)
               for storage in ("memory", "stream")}
    torch.save({**results, "gathered": gathered}, directory / f"rank{rank}.pt")


DDP_TRAIN = dataclasses.replace(TRAIN, batch_size=40)


@pytest.mark.slow
def test_two_gloo_ranks_stream_only_their_shares_and_match_memory(tmp_path):
    """123 training images in batches of 40: rank 0 gathers 20, 20, 20 and 2 images an epoch, rank 1 20, 20,
    20 and 1; the weights and the reduced figures equal those of the same two ranks reading memory."""
    prepared_on_disk(tmp_path / "prepared", DataConfig(train_subset=123))
    mp.spawn(rank_process, args=(2, free_port(), tmp_path), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=False) for rank in (0, 1)]
    assert ranks[0]["gathered"] == [[20, 20, 20, 2]] * 2 and ranks[1]["gathered"] == [[20, 20, 20, 1]] * 2
    for rank in ranks:
        for name, value in rank["memory"]["weights"].items():
            assert torch.equal(rank["stream"]["weights"][name], value), name
        assert rank["stream"]["figures"] == rank["memory"]["figures"]
    assert ranks[0]["stream"]["figures"] == ranks[1]["stream"]["figures"]  # every rank reports the reduced
    assert torch.equal(ranks[0]["stream"]["predictions"], ranks[0]["memory"]["predictions"])


@pytest.mark.slow
def test_the_train_stage_writes_the_same_files_in_memory_and_streamed(tmp_path):
    """``python -m stages.train gen0`` on the embedded default: checkpoint, predictions and metrics agree."""
    outputs = {}
    for storage in ("memory", "stream"):
        project = make_project(tmp_path / storage, {"data": {"storage": storage},
                                                    "train": {"augment": {"hflip": True}}})
        prepare(project)
        result = train(project, "gen0")
        assert result.returncode == 0, result.stderr
        assert f"data.storage {storage}: " in result.stdout
        outputs[storage] = {
            "model": torch.load(project / "models/gen0.pt", weights_only=True)["state_dict"],
            "predictions": torch.load(project / "preds/gen0.pt", weights_only=True),
            "metrics": json.loads((project / "metrics/gen0.json").read_text())}
    memory, stream = outputs["memory"], outputs["stream"]
    assert memory["metrics"] == stream["metrics"]
    assert memory["model"].keys() == stream["model"].keys()
    assert all(torch.equal(stream["model"][name], value) for name, value in memory["model"].items())
    assert memory["predictions"]["history"] == stream["predictions"]["history"]
    probs = [outputs[storage]["predictions"]["splits"]["test"]["probs"] for storage in ("memory", "stream")]
    assert torch.equal(*probs)


def test_imagefolder_without_test_or_val_names_both_layouts(tmp_path):
    write_jpegs(tmp_path / "raw", {"train": 2})
    with pytest.raises(DataError) as error:
        prepare_dataset(DataConfig(name="imagefolder", root=str(tmp_path / "raw"), image_size=8))
    root = tmp_path / "raw"
    assert str(error.value) == (f"{root}/test/ not found: imagefolder data needs "
                                f"{root}/train/<class>/<images> and {root}/test/<class>/<images> "
                                f"(or {root}/val/<class>/<images>)")


@pytest.mark.slow
def test_switching_storage_in_a_pipeline_trains_nothing_again(tmp_path):
    """The prepare stage reads the whole data section, so it runs again, and writes the same files: DVC
    then finds every train stage's dependencies unchanged."""
    project = make_project(tmp_path / "project", {"students": {"gen1": {"teacher": "gen0"}},
                                                  "ensemble": {"members": ["gen1"]}})
    run(project, "dvc", "repro")
    (project / "params.yaml").write_text((project / "params.yaml").read_text().replace(
        "storage: auto", "storage: stream"))
    assert stages_run(run(project, "dvc", "repro").stdout) == ["prepare"]

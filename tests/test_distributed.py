"""Data-parallel training: two gloo processes reach the weights of one process for every objective, with an
epoch whose last batch splits unevenly between them, and only rank 0 writes; each rank draws dropout masks
of its own and resumes bit for bit; a run resumed after its last epoch does not hang."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp
import yaml
from builders import TINY_LSTM, free_port, tiny_conv_net, write_grammar_corpus
from project import environment, make_project, merge, run
from stage_process import saved_epoch, state_file
from torch import nn

from ban.core.config import (
    AugmentConfig,
    DataConfig,
    KDConfig,
    ScheduleConfig,
    TrainConfig,
    params_from_mapping,
)
from ban.core.paths import PREPARED
from ban.data.prepared import Prepared, save_prepared
from ban.datasets import prepare_dataset
from ban.training.distributed import distribute, start_process_group
from ban.training.domains.image import ImageDomain
from ban.training.engine import Trainer
from ban.training.generation import resume
from ban.training.state import save_state

pytestmark = pytest.mark.slow  # real pipelines: processes, DVC, git

CPU = torch.device("cpu")
NO_AUGMENTATION, STEP = AugmentConfig(crop_padding=0), ScheduleConfig(name="step")  # a constant rate


def random_images(train: int = 123, test: int = 40) -> Prepared:
    """Digits-shaped random images: no dataset library to import in every process. 123 = 3 x 40 + 3:
    each epoch's last batch splits 2/1 between two processes."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (train + test, 1, 8, 8), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (train + test,), generator=generator)
    meta = {"task": "image", "name": "random", "classes": [str(c) for c in range(10)], "mean": [0.5],
            "std": [0.29], "shape": [1, 8, 8]}
    return Prepared(meta, {"train_x": images[:train], "train_y": labels[:train], "test_x": images[train:],
                           "test_y": labels[train:]})


OBJECTIVES = {"none": KDConfig(mode="none"), "ban": KDConfig(mode="ban"),
              "ban+l": KDConfig(mode="ban", label_weight=0.5), "cwtm": KDConfig(mode="cwtm"),
              "dkpp": KDConfig(mode="dkpp")}


def train_tiny(kd: KDConfig, rank: int, world: int) -> dict[str, Any]:
    """Two epochs, augmentation off, fp32, global batch 40, on this process's share.

    The network has no batch norm: PyTorch's SyncBatchNorm is CUDA-only, and per-rank batch
    statistics would make two processes differ from one by design.
    """
    train = TrainConfig(epochs=2, batch_size=40, precision="fp32", augment=NO_AUGMENTATION, schedule=STEP)
    domain = ImageDomain(random_images(), train, CPU, "fp32")
    model = tiny_conv_net(0)
    trainer = Trainer(distribute(model, CPU, world), domain, train, kd, seed=0, device=CPU, precision="fp32",
                      generation="gen1", teacher=tiny_conv_net(1), rank=rank, world=world)
    reports: list[Any] = []
    trainer.run(reports.append)
    figures = [{"loss": r.train_loss, "error": r.train_error, **r.losses, **r.analysis, **r.eval["test"]}
               for r in reports]
    return {"weights": model.state_dict(), "figures": figures}


def rank_process(rank: int, world: int, port: int, directory: Path) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    start_process_group(CPU)
    results = {name: train_tiny(kd, rank, world) for name, kd in OBJECTIVES.items()}
    torch.save(results, directory / f"rank{rank}.pt")


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Every objective trained by two gloo processes: what each rank ended with."""
    directory = tmp_path_factory.mktemp("ranks")
    mp.spawn(rank_process, args=(2, free_port(), directory), nprocs=2, join=True)
    return [torch.load(directory / f"rank{rank}.pt") for rank in (0, 1)]


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_two_gloo_processes_reach_the_weights_of_one_process(two_processes, objective):
    ranks = [results[objective] for results in two_processes]
    single = train_tiny(OBJECTIVES[objective], 0, 1)
    assert single["weights"].keys() == ranks[0]["weights"].keys()
    for name, value in single["weights"].items():
        torch.testing.assert_close(ranks[0]["weights"][name], value, rtol=1e-4, atol=1e-6)
        assert torch.equal(ranks[0]["weights"][name], ranks[1]["weights"][name])  # replicas stay identical
    assert ranks[0]["figures"] == ranks[1]["figures"]  # every rank reports the reduced figures
    for multi, one in zip(ranks[0]["figures"], single["figures"], strict=True):
        assert multi.keys() == one.keys()
        one.pop("cwtm_weight_std", None)  # a spread within each share, not a mean: it depends on the split
        for key, value in one.items():
            assert abs(multi[key] - value) <= 1e-4 * max(1.0, abs(value)), key
    assert single["figures"][-1]["loss"] < single["figures"][0]["loss"]  # it did learn


def test_a_two_process_stage_logs_and_writes_once(tmp_path):
    """``train.nproc: 2`` relaunches the stage under torchrun; rank 0 alone prints, logs and saves."""
    project = make_project(tmp_path, {"train": {"nproc": 2, "device": "cpu"}})
    save_prepared(project / PREPARED, prepare_dataset(DataConfig(train_subset=300)))  # what prepare makes
    output = run(project, "python", "-m", "stages.train", "gen0").stdout  # the command dvc.yaml runs
    assert re.findall(r"^gen0 epoch +(\d+)/2 ", output, re.MULTILINE) == ["1", "2"]
    assert output.count("data-parallel over 2 processes (gloo)") == 1
    assert json.loads((project / "metrics/gen0.json").read_text())["epochs"] == 2
    logged = (project / "dvclive/gen0/plots/metrics/train/loss.tsv").read_text().splitlines()
    assert len(logged) == 1 + 2  # a header and one row per epoch
    saved = torch.load(project / "models/gen0.pt", weights_only=True)
    assert saved["generation"] == "gen0" and saved["state_dict"]


class Stop(Exception):
    """Ends a run after an epoch, as an interruption would."""


def dropout_trainer(rank: int, world: int, masks: list[torch.Tensor]) -> tuple[Trainer, nn.Module]:
    """What a stage process builds: the network from the generation's seed, then its trainer.

    Dropout acts on the (non-zero) input images, so the mask each rank draws is visible in its output.
    """
    torch.manual_seed(0)
    model = nn.Sequential(nn.Dropout(0.5), nn.Flatten(), nn.Linear(64, 10))
    model[0].register_forward_hook(lambda module, inputs, output: masks.append(output != 0))
    train = TrainConfig(epochs=3, batch_size=40, precision="fp32", augment=NO_AUGMENTATION, schedule=STEP)
    domain = ImageDomain(random_images(), train, CPU, "fp32")
    trainer = Trainer(distribute(model, CPU, world), domain, train, KDConfig(mode="none"), seed=0, device=CPU,
                      precision="fp32", generation="gen0", rank=rank, world=world)
    return trainer, model


def dropout_process(rank: int, world: int, port: int, directory: Path) -> None:
    """Three epochs without a stop; then one epoch, its state saved as the stage saves it (every rank
    gathers, rank 0 writes), and a fresh trainer resumed from that file as a new stage process would."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    start_process_group(CPU)
    masks: list[torch.Tensor] = []
    whole, model = dropout_trainer(rank, world, masks)
    whole.run(lambda report: None)
    uninterrupted = {name: value.clone() for name, value in model.state_dict().items()}
    first, _ = dropout_trainer(rank, world, [])
    path = directory / "state.pt"

    def save_and_stop(report: Any) -> None:
        state = first.state_dict()
        if rank == 0:
            save_state(path, "digest", state, [])
        raise Stop

    try:
        first.run(save_and_stop)
    except Stop:
        pass
    resumed, model = dropout_trainer(rank, world, [])
    resume(resumed, path, "digest", world)
    resumed.run(lambda report: None)
    torch.save({"masks": masks[0], "uninterrupted": uninterrupted, "resumed": model.state_dict()},
               directory / f"dropout{rank}.pt")


def test_ranks_draw_their_own_dropout_masks_and_resume_bit_for_bit(tmp_path):
    mp.spawn(dropout_process, args=(2, free_port(), tmp_path), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"dropout{rank}.pt") for rank in (0, 1)]
    first, second = (rank["masks"].flatten(1) for rank in ranks)
    assert first.shape == second.shape == (20, 64)
    assert (first != second).float().mean() > 0.3  # independent masks differ in about half the places
    for rank in ranks:
        for name, value in rank["uninterrupted"].items():
            assert torch.equal(rank["resumed"][name], value), name
    replicas = ranks[0]["resumed"], ranks[1]["resumed"]
    assert all(torch.equal(replicas[0][name], replicas[1][name]) for name in replicas[0])


def test_a_two_process_run_resumed_after_its_last_epoch_finishes(tmp_path):
    """The last epoch's state is saved, then writing the outputs fails (a folder in the checkpoint's place);
    the rerun, on two processes, has nothing left to train and evaluates again on every rank, rather than
    rank 0 alone waiting for the others in a collective they never join (NCCL would hang until its timeout).
    The first run is one process: the state is the same on any number of processes, and it fails faster.
    """
    project = make_project(tmp_path, {"train": {"epochs": 1, "device": "cpu"}})
    save_prepared(project / PREPARED, prepare_dataset(DataConfig(train_subset=300)))
    (project / "models/gen0.pt").mkdir(parents=True)
    command = [sys.executable, "-m", "stages.train", "gen0"]
    failed = subprocess.run(command, cwd=project, env=environment(), text=True, capture_output=True,
                            timeout=300)
    assert failed.returncode == 1 and "could not write models/gen0.pt" in failed.stderr
    assert saved_epoch(project, "gen0") == 1
    (project / "models/gen0.pt").rmdir()
    params = merge(yaml.safe_load((project / "params.yaml").read_text()), {"train": {"nproc": 2}})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        rerun = subprocess.run(command, cwd=project, env=environment(), text=True, capture_output=True,
                               timeout=240)
    except subprocess.TimeoutExpired:
        pytest.fail("the resumed run hung after its last epoch")
    assert rerun.returncode == 0, rerun.stderr
    assert "gen0: resuming after epoch 1" in rerun.stdout and "gen0 epoch" not in rerun.stdout
    assert json.loads((project / "metrics/gen0.json").read_text())["epochs"] == 1
    assert state_file(project, "gen0") is None


def lm_project(directory: Path, corpus: Path, nnodes: int) -> Path:
    """A one-generation language-model chain (no batch norm, no dropout: one process and several agree)."""
    params = {"data": {"name": "ptb", "root": str(corpus), "train_subset": None},
              "model": TINY_LSTM, "students": {},
              "train": {"epochs": 2, "batch_size": 4, "bptt": 10, "clip_grad_norm": 0.0, "device": "cpu",
                        "precision": "fp32", "nnodes": nnodes, "schedule": {"name": "constant"},
                        "optimizer": {"lr": 1.0, "momentum": 0.0, "weight_decay": 0.0}}}
    project = make_project(directory, fast=False)
    settings = merge(yaml.safe_load((project / "params.yaml").read_text()), params)
    settings["model"] = TINY_LSTM
    (project / "params.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    save_prepared(project / PREPARED, prepare_dataset(params_from_mapping(settings).data))
    return project


def test_two_nodes_of_one_process_reach_the_weights_of_one_process(tmp_path):
    """``train.nnodes: 2``: two stage processes, as on two hosts, meet at a c10d rendezvous on localhost;
    the global rank 0 alone writes, and its weights equal a one-process run's."""
    corpus = write_grammar_corpus(tmp_path / "ptb")
    single = lm_project(tmp_path / "single", corpus, nnodes=1)
    run(single, "python", "-m", "stages.train", "gen0")
    nodes = [lm_project(tmp_path / f"node{rank}", corpus, nnodes=2) for rank in (0, 1)]
    env = dict(environment(), BAN_RDZV_ENDPOINT=f"127.0.0.1:{free_port()}", BAN_RDZV_ID="test")
    command = [sys.executable, "-m", "stages.train", "gen0"]  # what dvc.yaml runs, on each node
    processes = [subprocess.Popen(command, cwd=node, env=env, text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT) for node in nodes]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert "train.nproc=1, train.nnodes=2" in outputs[0]
    written = [node for node in nodes if (node / "models/gen0.pt").exists()]
    assert len(written) == 1 and not (({*nodes} - {*written}).pop() / "metrics").exists()
    epochs = [line for output in outputs for line in output.splitlines() if line.startswith("gen0 epoch")]
    assert len(epochs) == 2  # logged once, by the global rank 0
    one = torch.load(single / "models/gen0.pt", weights_only=True)["state_dict"]
    two = torch.load(written[0] / "models/gen0.pt", weights_only=True)["state_dict"]
    for name, value in one.items():
        torch.testing.assert_close(two[name], value, rtol=1e-4, atol=1e-6)

"""Data-parallel training: two gloo processes reach the weights of one process for every objective, with an
epoch whose last batch splits unevenly between them, and only rank 0 writes."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp
import yaml
from project import environment, make_project, merge, run
from test_engine_speed_paths import tiny_net
from test_lm_chain import TINY_LSTM, write_corpus

from ban.core.config import DataConfig, KDConfig, TrainConfig, params_from_mapping
from ban.core.paths import PREPARED
from ban.data.prepared import Prepared, save_prepared
from ban.datasets import prepare_dataset
from ban.training.distributed import distribute, start_process_group
from ban.training.domains.image import ImageDomain
from ban.training.engine import Trainer

pytestmark = pytest.mark.slow  # real pipelines: processes, DVC, git

CPU = torch.device("cpu")


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
    train = TrainConfig(epochs=2, batch_size=40, precision="fp32")
    domain = ImageDomain(random_images(), train, CPU, "fp32")
    model = tiny_net(0)
    trainer = Trainer(distribute(model, CPU, world), domain, train, kd, seed=0, device=CPU, precision="fp32",
                      generation="gen1", teacher=tiny_net(1), rank=rank, world=world)
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
    corpus = write_corpus(tmp_path / "ptb")
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

"""The launcher and GPUs: idle GPUs are pointed out, and a job never gets fewer GPUs than processes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ban.core.errors import ConfigError
from ban.launch.gpus import check_gpus
from ban.launch.plan import Job


def params(directory: Path, **train: object) -> Path:
    path = directory / "params.yaml"
    path.write_text(yaml.safe_dump({"seed": 0, "train": {"epochs": 2, **train}}))
    return path


def experiments(*overrides: tuple[str, ...]) -> list[Job]:
    return [Job(f"s-{index:02d}", grid, None, ()) for index, grid in enumerate(overrides, start=1)]


def test_gpus_left_idle_are_pointed_out(tmp_path):
    [line] = check_gpus(4, 0, params(tmp_path), experiments(("seed=0",), ("seed=1",)))
    assert line == ("warning: the cluster has 4 GPUs but --gpus-per-experiment is 0, so every job trains on "
                    "CPUs; give --gpus-per-experiment 1 (or more) to train on them")


def test_no_warning_without_gpus_or_when_the_cpu_is_asked_for(tmp_path):
    assert check_gpus(0, 0, params(tmp_path), experiments(("seed=0",))) == []
    assert check_gpus(4, 0, params(tmp_path, device="cpu"), experiments(("seed=0",))) == []
    assert check_gpus(4, 1, params(tmp_path), experiments(("seed=0",))) == []


def test_a_job_with_fewer_gpus_than_processes_is_refused(tmp_path):
    grid = experiments(("seed=0",), ("seed=1", "train.nproc=2"))
    with pytest.raises(ConfigError) as refused:
        check_gpus(8, 1, params(tmp_path), grid)
    assert str(refused.value) == ("train.nproc: experiment s-02 trains on 2 processes, one GPU each, but "
                                  "each job gets 1 GPU(s); give --gpus-per-experiment 2, or train.nproc 1")
    assert check_gpus(8, 2, params(tmp_path, nproc=2), grid[:1]) == []
    assert check_gpus(8, 1, params(tmp_path, nproc=2), experiments(("train.device=cpu",))) == []


def test_gpus_a_job_would_not_use_are_pointed_out(tmp_path):
    [line] = check_gpus(8, 2, params(tmp_path), experiments(("seed=0",)))
    assert line == ("warning: each job gets 2 GPUs but trains on 1 process(es), one GPU each: set "
                    "train.nproc to 2 to use them all")

"""The launcher and GPUs: idle GPUs are pointed out, and a job never gets fewer GPUs than processes."""

from __future__ import annotations

import pytest

from ban.core.config import TrainConfig
from ban.core.errors import ConfigError
from ban_pipeline.launch.gpus import check_gpus


def experiments(*trains: dict) -> dict[str, TrainConfig]:
    """Experiments ``s-01``, ``s-02``... with these ``train`` settings (the rest their defaults)."""
    return {f"s-{index:02d}": TrainConfig(**train) for index, train in enumerate(trains, start=1)}


def test_gpus_left_idle_are_pointed_out():
    [line] = check_gpus(4, 0, experiments({}, {}))
    assert line == ("warning: the cluster has 4 GPUs but --gpus-per-experiment is 0, so every job trains on "
                    "CPUs; give --gpus-per-experiment 1 (or more) to train on them")


def test_no_warning_without_gpus_or_when_the_cpu_is_asked_for():
    assert check_gpus(0, 0, experiments({})) == []
    assert check_gpus(4, 0, experiments({"device": "cpu"})) == []
    assert check_gpus(4, 1, experiments({})) == []


def test_a_job_with_fewer_gpus_than_processes_is_refused():
    with pytest.raises(ConfigError) as refused:
        check_gpus(8, 1, experiments({}, {"nproc": 2}))
    assert str(refused.value) == ("train.nproc: experiment s-02 trains on 2 processes, one GPU each, but "
                                  "each job gets 1 GPU(s); give --gpus-per-experiment 2, or train.nproc 1")
    assert check_gpus(8, 2, experiments({"nproc": 2})) == []
    assert check_gpus(8, 1, experiments({"nproc": 2, "device": "cpu"})) == []


def test_gpus_a_job_would_not_use_are_pointed_out():
    [line] = check_gpus(8, 2, experiments({}))
    assert line == ("warning: each job gets 2 GPUs but trains on 1 process(es), one GPU each: set "
                    "train.nproc to 2 to use them all")

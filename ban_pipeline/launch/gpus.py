"""The study's GPUs: warn when the cluster's GPUs would sit idle, refuse jobs whose data-parallel
processes would need more GPUs than each job asks Ray for.

A job trains on exactly the GPUs Ray gives it (``CUDA_VISIBLE_DEVICES``), and ``train.nproc > 1`` on a
GPU runs one process per GPU, so the numbers must agree before anything is launched.
"""

from __future__ import annotations

from ban.core.config import TrainConfig
from ban.core.errors import ConfigError


def check_gpus(cluster_gpus: float, gpus_per_job: float, experiments: dict[str, TrainConfig]) -> list[str]:
    """Warnings to print before the study starts; a ConfigError when a job cannot get its GPUs.
    ``experiments``: each experiment's ``train`` settings, as the plan resolved them."""
    on_gpus = {name: train.nproc for name, train in experiments.items() if train.device in ("auto", "cuda")}
    if gpus_per_job == 0:
        if cluster_gpus > 0 and on_gpus:
            return [f"warning: the cluster has {cluster_gpus:g} GPUs but --gpus-per-experiment is 0, so "
                    "every job trains on CPUs; give --gpus-per-experiment 1 (or more) to train on them"]
        return []
    for name, nproc in on_gpus.items():
        if nproc > gpus_per_job:
            raise ConfigError(f"train.nproc: experiment {name} trains on {nproc} processes, one GPU each, "
                              f"but each job gets {gpus_per_job:g} GPU(s); give --gpus-per-experiment "
                              f"{nproc}, or train.nproc 1")
    unused = sorted({nproc for nproc in on_gpus.values() if nproc < gpus_per_job})
    if unused:
        return [f"warning: each job gets {gpus_per_job:g} GPUs but trains on {unused[0]} process(es), one "
                f"GPU each: set train.nproc to {gpus_per_job:g} to use them all"]
    return []

"""Data-parallel training of one generation: torch DDP over processes started by ``torchrun``.

``train.nproc > 1`` makes the train stage replace itself with ``torch.distributed.run``
(``relaunch``), so ``dvc.yaml`` keeps one command whatever the number of processes, and a
one-process run never pays for a launcher. Every rank holds the whole prepared dataset (or, with
``data.storage: stream``, maps its files and reads only its share) and its own copy of the frozen
teacher, draws the same random global batch and trains on its share of it
(``ImageDomain.train_batches``); DDP averages the gradients. Rank 0 alone
evaluates, logs and writes files.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import sys
from typing import NoReturn

import torch
import torch.distributed as dist
from torch import nn

from ban.core.errors import ConfigError

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Distributed:
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls) -> Distributed:
        """Rank and world size as set by ``torchrun``; a plain run is one process."""
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))


def launched() -> bool:
    """True inside a process started by ``torchrun`` (which sets ``LOCAL_RANK``)."""
    return "LOCAL_RANK" in os.environ


RENDEZVOUS_ENDPOINT = "BAN_RDZV_ENDPOINT"  # host:port of the rendezvous, the same on every node
RENDEZVOUS_ID = "BAN_RDZV_ID"


def relaunch(nproc: int, nnodes: int, module: str, argv: list[str]) -> NoReturn:
    """Become ``torchrun`` running ``nproc`` processes of ``module argv`` on this node.

    One node: ``--standalone``, which picks a free port, so queued experiments can run side by
    side. Several nodes: every node runs the same stage command, and torchrun's c10d rendezvous
    at ``$BAN_RDZV_ENDPOINT`` (or ``$MASTER_ADDR:$MASTER_PORT``, as Slurm scripts and Ray set
    them) joins them; the global rank 0 alone writes files.
    ``exec`` rather than a child process: DVC's SIGINT/SIGTERM then reach torchrun, which
    passes them to every rank, and each rank saves its state as a single process would.
    Each rank gets an equal share of the CPU threads (torchrun would give each one thread).
    """
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // nproc)))
    nodes = ["--standalone"] if nnodes == 1 else rendezvous(nnodes)
    command = [sys.executable, "-m", "torch.distributed.run", *nodes, f"--nproc-per-node={nproc}",
               "-m", module, *argv]
    log.info("train.nproc=%d, train.nnodes=%d: %s", nproc, nnodes, " ".join(command[1:]))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)


def rendezvous(nnodes: int) -> list[str]:
    """torchrun's options for a c10d rendezvous of ``nnodes`` nodes, from the environment."""
    endpoint = os.environ.get(RENDEZVOUS_ENDPOINT)
    if not endpoint and os.environ.get("MASTER_ADDR") and os.environ.get("MASTER_PORT"):
        endpoint = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
    if not endpoint:
        raise ConfigError(f"train.nnodes: {nnodes} nodes meet at a rendezvous: set {RENDEZVOUS_ENDPOINT}="
                          "host:port (the same on every node), or MASTER_ADDR and MASTER_PORT")
    run_id = os.environ.get(RENDEZVOUS_ID) or os.environ.get("SLURM_JOB_ID") or "ban"
    return [f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}", f"--rdzv-id={run_id}"]


def start_process_group(device: torch.device) -> torch.device:
    """Join the group torchrun set up (NCCL on CUDA, gloo on the CPU); return this rank's device."""
    if device.type not in ("cuda", "cpu"):
        raise ConfigError(f"train.nproc: several processes need CUDA or the CPU, not {device.type}")
    if device.type == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"train.nproc: {os.environ.get('LOCAL_WORLD_SIZE')} processes need as many "
                              f"GPUs; this machine has {torch.cuda.device_count()}")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    atexit.register(dist.destroy_process_group)
    if dist.get_rank() > 0:
        logging.disable(logging.INFO)  # rank 0 tells the story; warnings and errors still show
    log.info("data-parallel over %d processes (%s)", dist.get_world_size(), dist.get_backend())
    return device


def distribute(model: nn.Module, device: torch.device, world: int) -> nn.Module:
    """Wrap ``model`` in DDP when ``world > 1``; gradients are then averaged over the ranks.

    On CUDA, batch norm becomes SyncBatchNorm (in place): statistics over the global batch,
    as in a one-process run, so buffers agree and need no broadcast. PyTorch's SyncBatchNorm
    refuses CPU tensors, so on the CPU each rank normalises with its own share of the batch
    (as most DDP code does) and DDP copies rank 0's running statistics to the others.
    """
    if world == 1:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index], broadcast_buffers=False,
                                                   gradient_as_bucket_view=True)
    return nn.parallel.DistributedDataParallel(model, gradient_as_bucket_view=True)


def wait_for_all(world: int) -> None:
    """Hold every rank until rank 0 has written its files: a rank that exits early breaks gloo's teardown."""
    if world > 1:
        dist.barrier()

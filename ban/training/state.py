"""Per-epoch training state, kept outside DVC's outputs so that finished generations stay run-cacheable.

DVC never saves or restores a stage with a persistent output from its run-cache, so the state is
not an output at all: it lives in ``state/`` (or ``$BAN_STATE_DIR``, e.g. a folder on storage that
several hosts share), one file per generation and fingerprint. A retried or resumed run of the
same training finds its own file; other trainings never read it. The file is removed once the
generation's outputs are written: from then on DVC's cache holds the result.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch.distributed as dist

from ban.core.files import describe_load_error, read_torch, save_torch

log = logging.getLogger(__name__)
STATE_DIR_VARIABLE = "BAN_STATE_DIR"
DEFAULT_STATE_DIR = Path("state")


def state_path(generation: str, digest: str) -> Path:
    directory = Path(os.environ.get(STATE_DIR_VARIABLE) or DEFAULT_STATE_DIR)
    return directory / f"{generation}-{digest[:16]}.pt"


def load_state(path: Path, digest: str, generation: str, world: int = 1) -> dict[str, Any] | None:
    """The saved state of this training, or None to start from the first epoch.

    Rank 0 reads the file and hands it to the other ranks, which may run on hosts that cannot see it.
    """
    saved: list[dict[str, Any] | None] = [None]
    if not dist.is_initialized() or dist.get_rank() == 0:
        saved[0] = _read(path, digest, generation)
    if world > 1:
        dist.broadcast_object_list(saved, src=0)
    return saved[0]


def _read(path: Path, digest: str, generation: str) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        saved = read_torch(path)
    except Exception as error:  # only progress is lost: start again rather than fail on every re-run
        log.warning("%s: discarding %s: it is %s", generation, path, describe_load_error(error))
        return None
    if not isinstance(saved, dict) or saved.get("fingerprint") != digest:
        log.warning("%s: discarding %s: it was made by another training", generation, path)
        return None
    return saved


def save_state(path: Path, digest: str, trainer_state: dict[str, Any], history: list[dict[str, Any]]) -> None:
    save_torch({"fingerprint": digest, "trainer": trainer_state, "history": history}, path)


def remove_state(path: Path) -> None:
    """The generation is complete and its outputs are written: its progress is of no further use."""
    path.unlink(missing_ok=True)

"""Atomic writes and safe loads for everything a stage saves with torch.

Files are written to a temporary sibling and renamed into place, so a killed
process or a full disk never leaves a half-written file for DVC to cache.
Loads use ``weights_only=True``: a checkpoint can hold tensors and plain data,
never code.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ban.errors import BanError, CheckpointError

FORMAT = "ban-checkpoint-1"


def atomic_write(path: str | Path, write: Any) -> None:
    """Call ``write(file_object)`` on a temp file next to ``path``, fsync, then rename."""
    path = Path(path)
    temp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        temp = Path(name)
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException as error:
        if temp is not None:
            temp.unlink(missing_ok=True)
        if isinstance(error, OSError):  # a full disk, a quota, permissions: the user can act on it
            raise BanError(f"could not write {path}: {error.strerror or error}") from None
        raise


def save_torch(obj: Any, path: str | Path) -> None:
    """Serialise in memory first: torch's writer reports a full disk as an opaque RuntimeError."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(path, lambda file: file.write(buffer.getbuffer()))


def save_json(obj: Any, path: str | Path) -> None:
    atomic_write(path, lambda file: file.write((json.dumps(obj, indent=2) + "\n").encode()))


def load_torch(path: str | Path, what: str, made_by: str) -> Any:
    """Load with ``weights_only=True``; errors name the file and the stage that makes it."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{what} {path} not found: it is made by {made_by}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else error.__class__.__name__
        if "weights_only" in str(error) or "Unsupported global" in str(error):
            reason = "it contains objects other than tensors and plain data (refused: loading could run code)"
        raise CheckpointError(f"{what} {path} is corrupt or unsafe ({reason}); re-create it with {made_by}") \
            from None


def save_model(model: nn.Module, path: str | Path, *, generation: str, arch: str, options: dict[str, Any],
               data_signature: dict[str, Any]) -> None:
    """A generation's network with what is needed to rebuild it without params.yaml."""
    state = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    save_torch({"format": FORMAT, "generation": generation, "arch": arch, "options": options,
                "data": data_signature, "state_dict": state}, path)


def load_model(path: str | Path, made_by: str, data_signature: dict[str, Any], build: Any) -> nn.Module:
    """Rebuild a saved generation; refuse one made for other data or a different network."""
    saved = load_torch(path, "checkpoint", made_by)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a born-again checkpoint; "
                              f"re-create it with {made_by}")
    if saved["data"] != data_signature:
        raise CheckpointError(f"checkpoint {path} was trained on other data ({saved['data']} vs "
                              f"{data_signature}); re-create it with {made_by}")
    model = build(saved["arch"], saved["options"])
    try:
        model.load_state_dict(saved["state_dict"])
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise CheckpointError(f"checkpoint {path} does not fit architecture {saved['arch']!r} ({first}); "
                              f"re-create it with {made_by}") from None
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP or torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)

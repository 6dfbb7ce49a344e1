"""Atomic writes and safe loads for everything a stage saves (torch files and JSON).

Files are written to a temporary sibling and renamed into place, so a killed
process or a full disk never leaves a half-written file for DVC to cache.
Loads use ``weights_only=True``: a checkpoint can hold tensors and plain data,
never code.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import tempfile
import types
import zipfile
from pathlib import Path
from typing import Any

import torch

from ban.core.errors import BanError, CheckpointError


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


class _ValuePickler(pickle.Pickler):
    """Writes each object where it occurs instead of referring back to an earlier occurrence.

    Pickle shares an object seen twice by identity, and identity differs between
    an uninterrupted run and a resumed one (whose history was loaded from disk):
    without sharing, equal content gives equal bytes. Checkpoints are trees, never cycles.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fast = True


_value_pickle = types.ModuleType("value_pickle")
_value_pickle.Pickler = _ValuePickler


def save_torch(obj: Any, path: str | Path) -> None:
    """Serialise in memory first: torch's writer reports a full disk as an opaque RuntimeError."""
    buffer = io.BytesIO()
    torch.save(obj, buffer, pickle_module=_value_pickle)
    atomic_write(path, lambda file: file.write(buffer.getbuffer()))


def save_json(obj: Any, path: str | Path) -> None:
    atomic_write(path, lambda file: file.write((json.dumps(obj, indent=2) + "\n").encode()))


def read_torch(path: str | Path, mmap: bool = False) -> Any:
    """The one way files are loaded: tensors and plain data only, so a file can never run code.

    ``mmap``: tensors read their bytes from the file as they are used (through the page cache, which
    the processes of a data-parallel run share) instead of each being copied into memory at once. Only
    torch's zip format can be mapped: anything else is read whole, and refused as before when damaged.
    """
    return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and zipfile.is_zipfile(path))


def describe_load_error(error: Exception) -> str:
    """Why :func:`read_torch` failed, in a few words: the file is corrupt, or refused as unsafe."""
    text = str(error)
    called = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if called:
        return f"unsafe: loading it would call {called.group(1)} (refused, nothing was run)"
    if "WeightsUnpickler error" in text:
        return "corrupt or unsafe: it is not made of tensors and plain data only (nothing in it was run)"
    first = text.split(". ")[0].splitlines()[0] if text.strip() else error.__class__.__name__
    return f"corrupt ({first})"


def load_torch(path: str | Path, what: str, made_by: str) -> Any:
    """:func:`read_torch`, with errors that name the file and the stage that makes it."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{what} {path} not found: it is made by {made_by}")
    try:
        return read_torch(path)
    except Exception as error:
        raise CheckpointError(f"{what} {path} is {describe_load_error(error)}; re-create it with {made_by}") \
            from None

"""A digest of everything that shapes a generation's training, to refuse stale resume state."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(settings: dict[str, Any], files: list[Path]) -> str:
    """Digest of JSON-able ``settings`` and the contents of ``files`` (data, teacher, code)."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in files:
        digest.update(file_digest(path).encode())
    return digest.hexdigest()

"""git and DVC as the project's commands run them outside the pipeline: one helper, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ban.core.errors import BanError


def output_of(command: list[str], cwd: Path | None = None, *, name: str | None = None) -> bytes:
    """What ``command`` writes to stdout; a failure is one line: the command (``name``, or its words)
    and the last line it printed on stderr (or stdout)."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    result = subprocess.run(command, cwd=cwd, capture_output=True, env=env)
    if result.returncode != 0:
        printed = (result.stderr or result.stdout).decode(errors="replace").strip()
        printed = printed or f"exit status {result.returncode}"
        raise BanError(f"{name or ' '.join(command)}: {printed.splitlines()[-1]}")
    return result.stdout


def git(cwd: Path | None, *arguments: str) -> str:
    """The stripped output of ``git arguments``."""
    return output_of(["git", *arguments], cwd, name=f"git {' '.join(arguments)}").decode().strip()


def dvc(cwd: Path | None, *arguments: str) -> str:
    """The output of ``dvc arguments``, run by this interpreter's DVC."""
    command = [sys.executable, "-m", "dvc", *arguments]
    return output_of(command, cwd, name=f"dvc {' '.join(arguments)}").decode()

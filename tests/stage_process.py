"""Stages as real processes (started, watched epoch by epoch, signalled) or as entry points in this process.

Stage processes run with one CPU thread: fast on a busy shared machine, and the
same thread count for every run whose bits are compared (a float sum may round
differently with another number of threads).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from project import environment

from ban.core.config import load_params
from ban.core.paths import PREPARED
from ban.data.prepared import save_prepared
from ban.datasets import prepare_dataset
from stages.cli import run

OUTPUTS = ("models", "preds", "metrics", "dvclive", "state")


def prepare(project: Path) -> None:
    """What the prepare stage does, without starting a process for it."""
    params = load_params(project / "params.yaml")
    save_prepared(project / PREPARED, prepare_dataset(params.data))


def train(project: Path, generation: str, **options: Any) -> subprocess.CompletedProcess[str]:
    """Run ``python -m stages.train`` to its end."""
    return subprocess.run([sys.executable, "-m", "stages.train", generation], cwd=project, text=True,
                          capture_output=True, env=environment(), timeout=300, **options)


@contextlib.contextmanager
def started(project: Path, generation: str) -> Iterator[subprocess.Popen[str]]:
    """A train stage running in the background; killed if the test leaves it running."""
    process = subprocess.Popen([sys.executable, "-m", "stages.train", generation], cwd=project, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment())
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def read_until_epoch(process: subprocess.Popen[str], generation: str, epoch: int) -> tuple[str, float]:
    """The output up to the progress line of ``epoch``, and that epoch's training time in seconds."""
    seen = []
    marker = f"{generation} epoch {epoch:>3}/"
    for line in process.stdout:
        seen.append(line)
        if line.startswith(marker):
            return "".join(seen), float(line.split()[-1].rstrip("s"))
    raise AssertionError(f"the stage ended before epoch {epoch}:\n{''.join(seen)}{process.stderr.read()}")


def state_file(project: Path, generation: str) -> Path | None:
    """The resume state of ``generation`` in the project's ``state/`` (named by its fingerprint), if any."""
    found = sorted((project / "state").glob(f"{generation}-*.pt"))
    assert len(found) <= 1, found
    return found[0] if found else None


def saved_epoch(project: Path, generation: str) -> int:
    return torch.load(state_file(project, generation), weights_only=True)["trainer"]["epoch"]


def digests(project: Path, folders: tuple[str, ...] = OUTPUTS) -> dict[str, str]:
    """SHA-256 of every file under ``folders``, by path relative to the project."""
    return {str(path.relative_to(project)): hashlib.sha256(path.read_bytes()).hexdigest()
            for folder in folders for path in sorted((project / folder).rglob("*")) if path.is_file()}


def run_here(project: Path, main: Callable[[list[str]], None], argv: list[str]) -> tuple[int, str]:
    """A stage's entry point run in this process: its exit status and what it printed on stderr.

    For failures that happen before any training: the same code as the stage
    process without the seconds it takes to import torch again.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stderr = io.StringIO()
    try:
        with contextlib.chdir(project), contextlib.redirect_stderr(stderr):
            run(main, argv)
        return 0, stderr.getvalue()
    except SystemExit as stop:
        return stop.code, stderr.getvalue()
    finally:  # the stage configures logging for a whole process
        root.handlers[:] = handlers
        root.setLevel(level)

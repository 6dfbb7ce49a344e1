"""A real copy of the project in a temporary git + DVC repository, for integration tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("ban", "ban_pipeline", "stages", "dvc.yaml", "params.yaml", ".dvcignore")

# Small, fast settings for tests: a few epochs of a tiny network on a digits subset, on the CPU, whose
# results repeat bit for bit (on a GPU cuDNN's autotuner may pick other kernels from run to run).
FAST = {
    "data": {"train_subset": 300},
    "model": {"arch": "resnet", "depth": 8, "width": 4},
    "train": {"epochs": 2, "batch_size": 100, "precision": "fp32", "device": "cpu"},
    "students": {"gen1": {"teacher": "gen0"}, "gen2": {"teacher": "gen1"}},
}


def merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Nested dict update: mappings merge, other values replace, and ``students`` is replaced whole."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict) and key != "students":
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def environment() -> dict[str, str]:
    # One thread: bit-identical results whatever the machine's load, and much faster when oversubscribed.
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1",
               GIT_AUTHOR_NAME="test", GIT_AUTHOR_EMAIL="test@example.com", GIT_COMMITTER_NAME="test",
               GIT_COMMITTER_EMAIL="test@example.com")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(project: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command in the project; a failure shows its whole output."""
    result = subprocess.run(command, cwd=project, env=environment(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {result.returncode}\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def wait_for_queue(project: Path, timeout: float = 600) -> str:
    """``dvc queue status`` once nothing is queued or running. Each look is a DVC process, so a look
    every few seconds: the experiments take minutes, and the suite's cores are their cores too."""
    deadline = time.monotonic() + timeout
    while re.search(r"\b(Queued|Running)\b", status := run(project, "dvc", "queue", "status").stdout):
        if time.monotonic() > deadline:
            raise AssertionError(f"the queue did not finish:\n{status}")
        time.sleep(5)
    return status


def make_project(directory: Path, overrides: Mapping[str, Any] | None = None, *, fast: bool = True,
                 extra: tuple[str, ...] = ()) -> Path:
    """Copy the project (and the ``extra`` paths) into ``directory``, apply params overrides, and commit
    it in fresh git + DVC repos."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in (*COPIED, *extra):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, directory / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, directory / name)
    write_params(directory, merge(FAST, overrides or {}) if fast else dict(overrides or {}))
    run(directory, "git", "init", "-q", "-b", "main")
    run(directory, "dvc", "init", "-q")
    with open(directory / ".dvc" / "config", "a") as config:  # as `dvc config core.<key> false` writes it
        config.write("[core]\n    analytics = false\n    check_update = false\n")
    run(directory, "git", "add", "-A")
    run(directory, "git", "commit", "-q", "-m", "project")
    return directory


def write_params(directory: Path, overrides: Mapping[str, Any]) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    (directory / "params.yaml").write_text(yaml.safe_dump(merge(params, overrides), sort_keys=False))


def stages_run(output: str, *, validate: bool = False) -> list[str]:
    """Names of the stages a ``dvc repro``/``dvc exp run`` output says it ran; ``validate``, which runs on
    every repro (it checks params.yaml and records the code each stage selects), only when asked."""
    names = [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")]
    return [name for name in names if validate or name != "validate"]


@dataclass(frozen=True)
class Reproduced:
    """A committed project after its first ``dvc repro``, and what that repro printed."""

    path: Path
    output: str

    def copy(self, directory: Path) -> Path:
        """A copy of the whole repository (git, DVC cache, outputs) in ``directory``, to change freely."""
        shutil.copytree(self.path, directory, symlinks=True)
        return directory


def reproduce_chain(directory: Path) -> Reproduced:
    """The ``FAST`` chain, with the files outside the pipeline that tests edit, reproduced and committed."""
    path = make_project(directory, extra=("README.md", "presets", "bench", "tests"))
    first = run(path, "dvc", "repro")
    run(path, "git", "add", "-A")
    run(path, "git", "commit", "-q", "-m", "first run")
    return Reproduced(path, first.stdout)

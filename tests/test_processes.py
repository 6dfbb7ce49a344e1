"""The application starts processes in one module (``ban_pipeline.processes``): a failure or a hang is one
line naming the command, and a streamed command's lines reach the caller as they come."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from project import ROOT

from ban.core.errors import BanError
from ban_pipeline.processes import output_of, shown, streamed

STARTS_PROCESSES = {"subprocess", "multiprocessing"}


def test_only_the_processes_module_starts_processes() -> None:
    starters = []
    for path in [*(ROOT / "ban_pipeline").rglob("*.py"), *(ROOT / "stages").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if STARTS_PROCESSES & {name.split(".")[0] for name in names}:
                starters.append(str(path.relative_to(ROOT)))
    assert starters == ["ban_pipeline/processes.py"]


def test_a_failing_command_is_one_line_with_its_last_words(tmp_path: Path) -> None:
    script = "import sys; print('first'); print('what went wrong', file=sys.stderr); sys.exit(3)"
    with pytest.raises(BanError, match=r"^the step: what went wrong$"):
        output_of([sys.executable, "-c", script], tmp_path, name="the step")


def test_a_command_that_hangs_is_stopped_after_its_timeout(tmp_path: Path) -> None:
    with pytest.raises(BanError, match=r"^sleep 30: no answer in 0.2 s$"):
        output_of(["sleep", "30"], tmp_path, timeout_s=0.2)


def test_a_shown_command_that_fails_names_its_exit_status(tmp_path: Path) -> None:
    with pytest.raises(BanError, match=r"^the repro failed \(exit 4\): see above$"):
        shown([sys.executable, "-c", "raise SystemExit(4)"], tmp_path, name="the repro")


def test_a_streamed_command_gives_each_line_and_its_status(tmp_path: Path) -> None:
    seen: list[str] = []
    script = "import sys; print('one'); print('two', file=sys.stderr, flush=True); sys.exit(5)"
    command = (sys.executable, "-c", script)
    status, output = streamed(command, tmp_path, {"PATH": "/usr/bin:/bin"}, seen.append)
    assert (status, sorted(seen), sorted(output.splitlines(keepends=True))) == (5, ["one\n", "two\n"],
                                                                             ["one\n", "two\n"])

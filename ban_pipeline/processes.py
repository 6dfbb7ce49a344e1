"""Every process the application starts (git, DVC, a job's commands): one place for how they run.

A failure is one line (the command and the last line it printed), a command that may hang has a
timeout, and a job's long commands are streamed line by line, stopped with everything they started
when the job is cancelled, and killed when the process that started them dies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from ban.core.errors import BanError
from ban.training.interrupt import PR_SET_PDEATHSIG

TERMINATE_GRACE_S = 30
KILLED_GONE_S = 10  # how long SIGKILLed processes may take to disappear


def quiet_environment() -> dict[str, str]:
    return dict(os.environ, DVC_NO_ANALYTICS="1")


def dvc_command(*arguments: str) -> list[str]:
    """``dvc arguments``, run by this interpreter's DVC."""
    return [sys.executable, "-m", "dvc", *arguments]


def output_of(command: list[str], cwd: Path | None = None, *, name: str | None = None,
              timeout_s: float | None = None) -> bytes:
    """What ``command`` writes to stdout; a failure is one line: the command (``name``, or its words)
    and the last line it printed on stderr (or stdout), or that it did not finish in ``timeout_s``."""
    name = name or " ".join(command)
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, env=quiet_environment(),
                                timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise BanError(f"{name}: no answer in {timeout_s:g} s") from None
    if result.returncode != 0:
        printed = (result.stderr or result.stdout).decode(errors="replace").strip()
        printed = printed or f"exit status {result.returncode}"
        raise BanError(f"{name}: {printed.splitlines()[-1]}")
    return result.stdout


def git(cwd: Path | None, *arguments: str, timeout_s: float | None = None) -> str:
    """The stripped output of ``git arguments``."""
    return output_of(["git", *arguments], cwd, name=f"git {' '.join(arguments)}",
                     timeout_s=timeout_s).decode().strip()


def dvc(cwd: Path | None, *arguments: str) -> str:
    """The output of ``dvc arguments``."""
    return output_of(dvc_command(*arguments), cwd, name=f"dvc {' '.join(arguments)}").decode()


def shown(command: list[str], cwd: Path, *, name: str) -> None:
    """Run ``command`` with its output on stderr (a long command's progress, beside ours on stdout)."""
    finished = subprocess.run(command, cwd=cwd, stdout=sys.stderr, stderr=sys.stderr, env=quiet_environment())
    if finished.returncode != 0:
        raise BanError(f"{name} failed (exit {finished.returncode}): see above")


def streamed(command: tuple[str, ...], cwd: Path | None, env: dict[str, str],
             on_line: Callable[[str], None]) -> tuple[int, str]:
    """Run ``command`` to its end, ``on_line`` seeing each line of its output (stdout and stderr);
    its exit status and whole output. On cancellation (KeyboardInterrupt from Ray) stop it first.

    The command runs in a session of its own, so that stopping it reaches the stage processes DVC
    started: SIGTERM first (a train stage then saves its epoch and exits), SIGKILL if it lingers. If
    this process dies, the command is killed with it. Output is copied by a thread while this one waits
    in short steps, so that a cancellation is acted on at once, not at the command's next line.
    """
    process = subprocess.Popen(with_parent(command), cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []

    def copy() -> None:
        for line in process.stdout:
            lines.append(line)
            on_line(line)

    copier = threading.Thread(target=copy, daemon=True)
    copier.start()
    try:
        while process.poll() is None:
            time.sleep(0.2)
    except BaseException:
        stop(process)
        raise
    copier.join()
    return process.returncode, "".join(lines)


# Sets PR_SET_PDEATHSIG to SIGKILL, then becomes the command: a fresh, single-threaded process does it,
# where preexec_fn in this multi-threaded Ray worker could deadlock.
_EXEC_WITH_PARENT = ("import ctypes, os, sys; "
                     f"ctypes.CDLL(None).prctl({PR_SET_PDEATHSIG}, {int(signal.SIGKILL)}, 0, 0, 0); "
                     "os.execvp(sys.argv[1], sys.argv[1:])")


def with_parent(command: tuple[str, ...]) -> list[str]:
    """``command``, killed when this process dies (on Linux; elsewhere as it is)."""
    if not sys.platform.startswith("linux"):
        return list(command)
    return [sys.executable, "-c", _EXEC_WITH_PARENT, *command]


def stop_leftovers(workdir: Path) -> None:
    """End processes still working in ``workdir``: a previous attempt's, when its worker died."""
    for process in psutil.process_iter(["pid"]):
        try:
            if Path(process.cwd()).is_relative_to(workdir) and process.pid != os.getpid():
                process.kill()
        except (psutil.Error, OSError):
            continue


def stop(process: subprocess.Popen[str]) -> None:
    """Stop the command and every process it started (its process group): SIGTERM first (a train stage
    saves its epoch and exits), SIGKILL what is left after the grace period. Returns once none is left,
    not when the command alone has exited: DVC exits at once, its stage may take seconds to finish."""
    for sig, grace in ((signal.SIGTERM, TERMINATE_GRACE_S), (signal.SIGKILL, KILLED_GONE_S)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        process.poll()  # reap the command itself when it exits
        deadline = time.monotonic() + grace
        while group_running(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
            process.poll()
        if not group_running(process.pid):
            return


def group_running(group: int) -> bool:
    """Whether a process of ``group`` still runs (zombies, which wait for a parent to reap them, do not)."""
    for found in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(found.info["pid"]) == group and found.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False

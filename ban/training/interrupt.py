"""Turn SIGTERM into KeyboardInterrupt, and hold both back while a file is being written.

A pre-empted job then stops between two epochs' worth of writes, never inside
one, and the stage can print how to resume.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING

from ban.core.errors import BanError, import_optional

if TYPE_CHECKING:
    import psutil

_deferred: list[int] = []
_protecting = False


class SignalReceived(KeyboardInterrupt):
    """Raised where the signal's default action would kill the process, so cleanup code still runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Interrupted(BanError):
    """A stage stopped by a signal; it exits with the shell's status for it, 128 + the signal number."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


def _handle(signum: int, frame: FrameType | None) -> None:
    if _protecting:
        _deferred.append(signum)
        return
    raise SignalReceived(signum)


PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent dies


def stop_with_parent(signum: int = signal.SIGTERM) -> None:
    """Get ``signum`` when the process that ran this stage dies (Linux), so that a stage whose ``dvc`` was
    killed saves its epoch and stops instead of training on unseen; elsewhere nothing happens.

    DVC runs a stage's command as ``$SHELL -c CMD``. bash becomes the command; dash (``/bin/sh`` on
    Debian, which DVC takes where SHELL is unset: containers, services, CI) stays between the two and
    outlives a killed ``dvc``, so the process that ran the shell is watched as well."""
    if not sys.platform.startswith("linux"):
        return
    psutil = import_optional("psutil", "pipeline", "watching the process that ran a stage")
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    try:
        shell = psutil.Process().parent()
        if shell is not None and _runs_one_command(shell):
            _signal_when_gone(shell, signum)
    except psutil.NoSuchProcess:  # the parent died before the signal was asked for
        os.kill(os.getpid(), signum)
    except psutil.AccessDenied:  # a parent this user may not inspect: its death signal alone
        return


def _runs_one_command(process: psutil.Process) -> bool:
    """Whether ``process`` is a shell running one command line (``sh -c CMD``, as DVC starts a stage)."""
    command = process.cmdline()
    return len(command) >= 3 and command[-2] == "-c"


def _signal_when_gone(shell: psutil.Process, signum: int) -> None:
    """Send ``signum`` to this process once ``shell``'s parent has exited, from a thread that waits on a
    pidfd (Linux 5.3 and later; before, nothing is watched beyond the shell)."""
    runner = shell.ppid()
    try:
        gone = os.pidfd_open(runner)
    except ProcessLookupError:
        gone = None
    except OSError:
        return
    if gone is None or shell.ppid() != runner:  # it exited before it was watched
        os.kill(os.getpid(), signum)
        return

    def wait() -> None:
        select.select([gone], [], [])
        os.kill(os.getpid(), signum)

    threading.Thread(target=wait, name="stop-with-runner", daemon=True).start()


def install() -> None:
    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)


@contextlib.contextmanager
def protected() -> Iterator[None]:
    """Finish the enclosed writes even if SIGINT/SIGTERM arrives, then act on it."""
    global _protecting
    _protecting = True
    try:
        yield
    finally:
        _protecting = False
    if _deferred:
        signum = _deferred[0]
        _deferred.clear()  # a second Ctrl-C during the write asks for the same stop
        raise SignalReceived(signum)

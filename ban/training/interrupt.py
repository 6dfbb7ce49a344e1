"""Turn SIGTERM into KeyboardInterrupt, and hold both back while a file is being written.

A pre-empted job then stops between two epochs' worth of writes, never inside
one, and the stage can print how to resume.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
from collections.abc import Iterator
from types import FrameType

from ban.core.errors import BanError

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
    """Get ``signum`` when the parent process dies (Linux), so that a stage whose ``dvc`` was killed
    saves its epoch and stops instead of training on unseen; elsewhere nothing happens."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)


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

"""Turn SIGTERM into KeyboardInterrupt, and hold both back while a file is being written.

A pre-empted job then stops between two epochs' worth of writes, never inside
one, and the stage can print how to resume.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

_deferred: list[int] = []
_protecting = False


def _handle(signum: int, frame: FrameType | None) -> None:
    if _protecting:
        _deferred.append(signum)
        return
    raise KeyboardInterrupt(signal.Signals(signum).name)


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
        raise KeyboardInterrupt(signal.Signals(_deferred.pop()).name)

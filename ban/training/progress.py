"""Progress inside an epoch: a bar on a terminal, otherwise a line every so often (as in DVC's logs).

A PTB epoch on a CPU runs for minutes with nothing else to show. Progress counts steps and
examples on the host and reads the clock; it never reads a tensor, so on a GPU no step waits
for the device (the rate is that of the steps queued, which the device keeps up with within
its queue's length).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

from ban.core.errors import ConfigError

ENVIRONMENT = "BAN_PROGRESS_SECONDS"
LINE_SECONDS = 30.0  # between progress lines when the output is not a terminal
BAR_SECONDS = 0.5  # between redraws of the bar on a terminal


class Progress:
    """Reports ``steps`` of ``total`` with the rate and the time left, at most once per ``every`` seconds."""

    def __init__(
        self,
        label: str,
        total: int,
        unit: str,
        *,
        every: float,
        bar: bool,
        stream: TextIO,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.unit, self.every, self.bar = label, total, unit, every, bar
        self.stream, self.clock = stream, clock
        self.steps = self.examples = 0
        self.started = self.shown = clock()
        self.drawn = False

    def update(self, examples: int) -> None:
        """One more step of ``examples`` examples; shows progress when ``every`` seconds have passed."""
        self.steps += 1
        self.examples += examples
        now = self.clock()
        if now - self.shown >= self.every and self.steps < self.total:
            self.shown = now
            self.show(now - self.started)

    def show(self, elapsed: float) -> None:
        rate = self.examples / elapsed if elapsed > 0 else 0.0
        left = elapsed / self.steps * (self.total - self.steps)
        text = (
            f"{self.label}  {self.steps}/{self.total} steps ({100 * self.steps / self.total:.0f}%)  "
            f"{rate:,.0f} {self.unit}/s  {clock_time(left)} left"
        )
        if self.bar:
            filled = round(20 * self.steps / self.total)
            self.stream.write(f"\r[{'#' * filled}{'.' * (20 - filled)}] {text}\x1b[K")
            self.drawn = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Clear the bar, so that the epoch's own line starts on a clean line."""
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def clock_time(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def epoch_progress(label: str, total: int, unit: str, stream: TextIO | None = None) -> Progress:
    """A bar redrawn twice a second on a terminal, else a line every 30 s; ``BAN_PROGRESS_SECONDS`` sets
    the interval."""
    stream = stream or sys.stdout
    bar = stream.isatty()
    setting = os.environ.get(ENVIRONMENT)
    try:
        every = float(setting) if setting else BAR_SECONDS if bar else LINE_SECONDS
    except ValueError:
        raise ConfigError(f"{ENVIRONMENT}={setting!r}: give the seconds between progress lines") from None
    return Progress(label, total, unit, every=every, bar=bar, stream=stream)

"""The progress of ``wpcdc snapshot`` on screen: posts done, posts/s and ETA.

This module owns how a run reports how far it is (:class:`ProgressReporter`):
one line rewritten in place on a terminal (:class:`TerminalProgress`), a log
line every few seconds otherwise (:class:`LogProgress`). The arithmetic
(:class:`Progress`) is pure; the caller passes the clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TextIO

log = logging.getLogger("wpcdc.snapshot")


def format_duration(seconds: float) -> str:
    seconds = max(round(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(slots=True)
class Progress:
    """Posts done of the total, and the rate of this run; pure (the caller passes the time)."""

    total: int
    done: int
    started_at: float
    done_at_start: int = 0

    def rate(self, now: float) -> float:
        elapsed = now - self.started_at
        return (self.done - self.done_at_start) / elapsed if elapsed > 0 else 0.0

    def eta(self, now: float) -> float | None:
        rate = self.rate(now)
        return max(self.total - self.done, 0) / rate if rate > 0 else None

    def line(self, now: float) -> str:
        share = self.done / self.total if self.total else 1.0
        eta = self.eta(now)
        return (
            f"{self.done:,}/{self.total:,} posts ({share:.0%})  {self.rate(now):,.0f} posts/s  "
            f"ETA {format_duration(eta) if eta is not None else '?'}"
        )

    def bar(self, width: int = 24) -> str:
        share = min(self.done / self.total, 1.0) if self.total else 1.0
        filled = int(share * width)
        return "[" + "#" * filled + "-" * (width - filled) + "]"


class ProgressReporter(Protocol):
    def start(self, total: int, done: int) -> None: ...

    def advance(self, done: int) -> None: ...

    def finish(self) -> None: ...


class _Throttled:
    """Shows the progress at the start, at most every ``interval`` seconds while
    it advances, and at the finish; subclasses say where it goes."""

    def __init__(self, clock: Callable[[], float], interval: float) -> None:
        self._clock = clock
        self._interval = interval
        self._progress: Progress | None = None
        self._shown = float("-inf")

    def start(self, total: int, done: int) -> None:
        self._progress = Progress(total, done, self._clock(), done)
        self._show(force=True)

    def advance(self, done: int) -> None:
        if self._progress is not None:
            self._progress.done = done
            self._show()

    def finish(self) -> None:
        if self._progress is not None:
            self._show(force=True)
            self._end()

    def _show(self, force: bool = False) -> None:
        now = self._clock()
        if self._progress is None or (not force and now - self._shown < self._interval):
            return
        self._shown = now
        self._emit(self._progress, now)

    def _emit(self, progress: Progress, now: float) -> None:
        raise NotImplementedError

    def _end(self) -> None:
        """After the last line."""


class TerminalProgress(_Throttled):
    """One line rewritten in place (carriage return), at most ten times a second."""

    def __init__(self, stream: TextIO, clock: Callable[[], float]) -> None:
        super().__init__(clock, 0.1)
        self._stream = stream

    def _emit(self, progress: Progress, now: float) -> None:
        line = f"snapshot {progress.bar()} {progress.line(now)}"
        # Padding wipes what a longer previous line left.
        self._stream.write("\r" + line.ljust(100))
        self._stream.flush()

    def _end(self) -> None:
        self._stream.write("\n")
        self._stream.flush()


class LogProgress(_Throttled):
    """A log line every ``interval`` seconds, for logs that are not a terminal."""

    def _emit(self, progress: Progress, now: float) -> None:
        log.info("snapshot: %s", progress.line(now))

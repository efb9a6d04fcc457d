"""The progress of wpcdc snapshot on screen: rate and ETA, the terminal line, the log."""

from __future__ import annotations

import io
import logging

import pytest

from wpcdc.runtime.progress import LogProgress, Progress, TerminalProgress, format_duration


def test_progress_line_has_rate_and_eta() -> None:
    progress = Progress(total=10_000, done=1_000, started_at=100.0, done_at_start=1_000)
    assert progress.eta(100.0) is None
    progress.done = 3_000
    assert progress.rate(104.0) == 500.0
    assert progress.eta(104.0) == 14.0
    assert progress.line(104.0) == "3,000/10,000 posts (30%)  500 posts/s  ETA 0:14"
    assert progress.bar(10) == "[###-------]"
    assert format_duration(3725) == "1:02:05" and format_duration(65.4) == "1:05"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_terminal_progress_rewrites_one_line() -> None:
    out, clock = io.StringIO(), Clock()
    progress = TerminalProgress(out, clock)
    progress.start(total=100, done=0)
    clock.now = 0.05
    progress.advance(10)  # too soon after the last draw: not shown
    clock.now = 1.0
    progress.advance(50)
    progress.finish()
    lines = out.getvalue().split("\r")[1:]
    assert len(lines) == 3 and out.getvalue().endswith("\n")
    assert "50/100 posts (50%)" in lines[1] and "50 posts/s" in lines[1] and "ETA 0:01" in lines[1]


def test_log_progress_every_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = LogProgress(clock, interval=5.0)
    with caplog.at_level(logging.INFO, logger="wpcdc.snapshot"):
        progress.start(total=100, done=0)
        for second in range(1, 12):
            clock.now = float(second)
            progress.advance(second * 5)
        progress.finish()
    assert len(caplog.records) == 4  # start, at 5 s, at 10 s, finish
    assert "50/100 posts" in caplog.records[2].getMessage()

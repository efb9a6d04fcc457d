"""The run loop's stop: honoured while a pipeline starts, and never held by a blocked
thread (issue 10: SIGTERM took 52 s while the broker was unreachable)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from wpcdc.core.checkpoint import Checkpoint, Covered, CoveredRange
from wpcdc.core.positions import Coordinate, Position
from wpcdc.runtime.run import DaemonThreads, Stopped, furthest_acknowledged, unless_stopped


def test_unless_stopped_returns_the_result_when_no_stop_comes() -> None:
    async def main() -> int:
        return await unless_stopped(asyncio.Event(), asyncio.sleep(0, 42))

    assert asyncio.run(main()) == 42


def test_a_stop_cancels_the_start_and_lets_it_clean_up() -> None:
    cleaned = []

    async def start() -> None:
        try:
            await asyncio.sleep(60)  # a broker that does not answer
        finally:
            cleaned.append(True)

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.05, stop.set)
        await unless_stopped(stop, start())

    began = time.monotonic()
    with pytest.raises(Stopped):
        asyncio.run(main())
    assert time.monotonic() - began < 1 and cleaned == [True]


def test_a_start_that_swallows_a_cancellation_is_cancelled_again() -> None:
    swallowed = []

    async def start() -> None:
        while True:  # as a retry loop whose first cancellation got lost in wait_for
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed.append(True)

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.05, stop.set)
        await unless_stopped(stop, start())

    began = time.monotonic()
    with pytest.raises(Stopped):
        asyncio.run(main())
    assert swallowed == [True] and time.monotonic() - began < 1


def test_errors_of_the_start_still_surface() -> None:
    async def refused() -> None:
        raise OSError("refused")

    async def main() -> None:
        await unless_stopped(asyncio.Event(), refused())

    with pytest.raises(OSError, match="refused"):
        asyncio.run(main())


def test_blocking_calls_run_in_daemon_threads_that_a_stop_does_not_wait_for() -> None:
    release = threading.Event()
    seen: list[bool] = []

    def blocked() -> None:
        seen.append(threading.current_thread().daemon)
        release.wait(30)  # a database that does not answer

    async def main() -> None:
        asyncio.get_running_loop().set_default_executor(DaemonThreads())
        assert await asyncio.to_thread(lambda: 7) == 7
        with pytest.raises(ZeroDivisionError):
            await asyncio.to_thread(lambda: 1 / 0)
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.05, stop.set)
        with pytest.raises(Stopped):
            await unless_stopped(stop, asyncio.to_thread(blocked))

    began = time.monotonic()
    asyncio.run(main())  # closing the loop joins no thread
    assert time.monotonic() - began < 5 and seen == [True]
    release.set()


def test_the_furthest_acknowledged_coordinate_is_the_furthest_covered_marker() -> None:
    position = Position("binlog.000003", 400)
    assert furthest_acknowledged(Checkpoint(position=position)) is None
    checkpoint = Checkpoint(
        position=position,
        covered=(
            Covered(1, 5, Coordinate(3, 900, 2)),
            Covered(1, 6, Coordinate(4, 120, 0)),
        ),
        covered_ranges=(CoveredRange(1, 10, 20, Coordinate(3, 1000, 0)),),
    )
    assert furthest_acknowledged(checkpoint) == Coordinate(4, 120, 0)

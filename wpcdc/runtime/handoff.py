"""The hand-over from the blocking binlog reader to the asyncio loop.

This module owns the reader thread and the bounded queue between it and the
loop. The binlog read blocks, so it runs in a thread of its own; the loop takes
what the thread read in batches. When the broker is slow the thread waits
instead of buffering (promise "bounded memory", docs/ARCHITECTURE.md).

The hand-over costs what it should: the loop wakes once per batch, not per
item (bench_pipeline, 500 posts: 425 batches for 9,167 items; a synthetic
reader/loop pair: 3-5 µs of CPU per item when batches are large, up to ~20 µs
when a fast loop takes a few items per wake-up). The two threads still take
turns on the interpreter lock, and each takes it back after every socket call
(the reader's reads, the producer's sends), which py-spy shows as a real share
of both threads during a bulk job (benchmarks/README.md, session 6): the read on
the loop thread (sans-IO) is the next step for throughput (issue 8).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, cast

from wpcdc.core.rows import SourceItem, TransactionPart


class Source(Protocol):
    """The binlog source (wpcdc.mysql.binlog.BinlogSource): ``items`` blocks, in a thread."""

    def items(self) -> Iterator[SourceItem]: ...

    def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class End:
    """The source's iterator ended, normally or with ``error``."""

    error: BaseException | None


class Handoff:
    """A bounded hand-over from the reader thread to the asyncio loop.

    The reader never holds items back (a blocked binlog read must not delay what
    it already has): each item is appended at once, and the loop takes
    everything waiting as one batch, so batches grow when the loop is busy and
    shrink to one item when it is idle. The reader blocks while ``capacity``
    items wait: memory stays bounded when the broker is slow.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        self._loop = loop
        self._capacity = capacity
        self._items: deque[object] = deque()
        self._load = 0
        self._condition = threading.Condition()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def put(self, item: object, weight: int = 1) -> bool:
        """From the reader thread; False once the loop has closed the hand-over.

        ``weight`` is what the item costs in memory (row changes): the bound is on
        the total, so a few huge transaction parts cannot hold a million rows."""
        with self._condition:
            while self._load and self._load + weight > self._capacity and not self._closed:
                self._condition.wait(0.2)
            if self._closed:
                return False
            self._items.append(item)
            self._load += weight
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._loop.call_soon_threadsafe(_wake, waiter)
        return True

    async def take(self) -> list[object]:
        """On the loop: everything waiting, at least one item."""
        while True:
            with self._condition:
                if self._items:
                    batch = list(self._items)
                    self._items.clear()
                    self._load = 0
                    self._condition.notify_all()
                    return batch
                waiter = self._waiter = self._loop.create_future()
            await waiter

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._items.clear()
            self._load = 0
            self._condition.notify_all()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


@dataclass(frozen=True, slots=True)
class Batch:
    """What the reader handed over since the last take, with the time each item
    was read (the reader's clock); ``end`` once the source ended."""

    items: list[object]
    arrivals: list[float]
    end: End | None


class Reader:
    """Runs ``source.items()`` in a thread and hands its items to the loop.

    A transaction part weighs its row changes (at least 1): the hand-over holds
    at most ``capacity`` row changes, whatever the size of the transactions.
    """

    def __init__(
        self, source: Source, capacity: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._source = source
        self._capacity = capacity
        self._clock = clock
        self._handoff: Handoff | None = None

    def start(self) -> None:
        """On the loop: start the reader thread."""
        self._handoff = Handoff(asyncio.get_running_loop(), self._capacity)
        thread = threading.Thread(
            target=self._read, args=(self._handoff,), name="wpcdc-binlog", daemon=True
        )
        thread.start()

    async def take(self) -> Batch:
        """Everything read since the last take: at least one item or the end."""
        assert self._handoff is not None, "Reader.take() before start()"
        taken = await self._handoff.take()
        items: list[object] = []
        arrivals: list[float] = []
        end: End | None = None
        for entry in taken:
            arrival, item = cast(tuple[float, object], entry)
            if isinstance(item, End):
                end = item
            else:
                items.append(item)
                arrivals.append(arrival)
        return Batch(items, arrivals, end)

    def stop(self) -> None:
        """Release a reader blocked on a full hand-over, and stop the source."""
        if self._handoff is not None:
            self._handoff.close()
        self._source.stop()

    def _read(self, handoff: Handoff) -> None:
        # Each item goes with the time it was read: the fold's quiet and age rules
        # measure the writer's pace, not how busy the loop was when it took it.
        clock = self._clock
        error: BaseException | None = None
        try:
            for item in self._source.items():
                weight = len(item.changes) if isinstance(item, TransactionPart) else 0
                if not handoff.put((clock(), item), max(weight, 1)):
                    return
        except BaseException as exc:  # raised again on the loop's side
            error = exc
        handoff.put((clock(), End(error)))

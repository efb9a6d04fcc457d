"""Getting the binlog source's items to the asyncio loop.

This module owns the two ways the pipeline reads its source:

- :class:`LoopReader` (the fast binlog reader): the source runs on the loop's
  own thread. ``BinlogSource.steps()`` never blocks on the socket: it yields a
  ``Wait`` and the loop waits for the socket to be readable, with everything
  else it does; a step that blocks anyway (connecting, a backoff wait) runs in
  a worker thread. Session 7 measured why (benchmarks/README.md): with the read
  in a thread of its own, the two threads took turns on the interpreter lock
  and took it back after every socket call, and a bulk job took 15-25% longer
  than with one thread.
- :class:`Reader` (the library reader, whose reads all block, and any source
  with only ``items()``): the read runs in a thread, and a bounded hand-over
  passes what it read to the loop in batches. The loop wakes once per batch,
  not per item.

Either way the loop holds at most ``capacity`` row changes read and not yet
folded: when the broker is slow the source is not read (promise "bounded
memory", docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, cast, runtime_checkable

from wpcdc.core.rows import BLOCKING, SourceItem, SourceStep, TransactionPart, Wait


class Source(Protocol):
    """The binlog source (wpcdc.mysql.binlog.BinlogSource): ``items`` blocks, in a thread."""

    def items(self) -> Iterator[SourceItem]: ...

    def stop(self) -> None: ...


@runtime_checkable
class SteppedSource(Source, Protocol):
    """A source that can also run on the loop (BinlogSource with the fast reader)."""

    @property
    def reads_on_loop(self) -> bool: ...

    def steps(self) -> Iterator[SourceStep]: ...


def weight(item: object) -> int:
    """What an item read costs in memory, in row changes: a transaction part its
    changes (at least one: a transaction on unwatched tables has none), an Idle one."""
    if item.__class__ is TransactionPart:
        return max(len(item.changes), 1)
    return 1


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
                if not handoff.put((clock(), item), weight(item)):
                    return
        except BaseException as exc:  # raised again on the loop's side
            error = exc
        handoff.put((clock(), End(error)))


# next()'s default: the source's iterator ended (StopIteration cannot cross a future).
_ENDED = object()


class LoopReader:
    """Runs ``source.steps()`` on the loop's thread (see the module docstring).

    ``take`` reads until ``capacity`` row changes are in hand or the source has
    to wait for the server, whichever comes first: during a backlog batches are
    large, and when caught up each one is handed on as soon as it is read.
    """

    def __init__(
        self, source: SteppedSource, capacity: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._source = source
        self._capacity = capacity
        self._clock = clock
        self._steps: Iterator[SourceStep] | None = None
        # The source said its next step blocks: run it in a worker thread.
        self._blocking = False
        # A step running in a worker thread (the iterator is busy until it is done).
        self._running: asyncio.Future[object] | None = None
        # The source is waiting for the socket; the batch before it went out first.
        self._wait: Wait | None = None
        self._stopped = False

    def start(self) -> None:
        """On the loop: nothing is read until the first take."""
        self._steps = self._source.steps()

    async def take(self) -> Batch:
        """Everything read up to ``capacity`` row changes: at least one item or the end."""
        steps = self._steps
        assert steps is not None, "LoopReader.take() before start()"
        clock = self._clock
        items: list[object] = []
        arrivals: list[float] = []
        load = 0
        while True:
            if self._wait is not None:
                wait, self._wait = self._wait, None
                await _readable(wait)
            try:
                if self._blocking:
                    self._blocking = False
                    step = await self._in_thread(steps)
                else:
                    step = next(steps, _ENDED)
            except Exception as exc:  # raised again by the pipeline
                return Batch(items, arrivals, End(exc))
            if step is _ENDED:
                return Batch(items, arrivals, End(None))
            if step.__class__ is Wait:
                self._wait = step
                if items:
                    return Batch(items, arrivals, None)
                continue
            if step is BLOCKING:
                self._blocking = True
                if items:
                    return Batch(items, arrivals, None)
                continue
            items.append(step)
            arrivals.append(clock())
            load += weight(step)
            if load >= self._capacity:
                return Batch(items, arrivals, None)

    async def _in_thread(self, steps: Iterator[SourceStep]) -> object:
        loop = asyncio.get_running_loop()
        self._running = loop.run_in_executor(None, next, steps, _ENDED)
        try:
            return await asyncio.shield(self._running)
        finally:
            if self._running.done():
                self._running = None

    def stop(self) -> None:
        """Stop the source, and close its iterator once no thread runs it."""
        if self._stopped:
            return
        self._stopped = True
        self._source.stop()
        running = self._running
        if running is not None and not running.done():
            running.add_done_callback(lambda _: self._close())
        else:
            self._close()

    def _close(self) -> None:
        steps, self._steps = self._steps, None
        close = getattr(steps, "close", None)
        if close is not None:
            try:
                close()
            except Exception as exc:  # stopping: said, not raised
                logging.getLogger("wpcdc.source").debug("closing the source: %s", exc)


async def _readable(wait: Wait) -> None:
    """Until ``wait``'s socket is readable or its deadline passes (or it is closed)."""
    loop = asyncio.get_running_loop()
    try:
        fd = wait.sock.fileno()
    except (OSError, ValueError):
        return
    if fd < 0:
        return
    ready: asyncio.Future[None] = loop.create_future()
    loop.add_reader(fd, _wake, ready)
    timer = None
    if wait.deadline is not None:
        timer = loop.call_later(max(wait.deadline - time.monotonic(), 0.0), _wake, ready)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
        if timer is not None:
            timer.cancel()

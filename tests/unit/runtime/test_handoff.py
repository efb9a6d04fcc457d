"""The loop reader: the source's steps run on the loop's thread, waits for the socket
are awaited, blocking steps go to a worker thread, batches are bounded."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

from tests.support.binlog_builder import POSTS, Binlog, post_row, update
from wpcdc.core.rows import BLOCKING, SourceItem, SourceStep, TransactionPart, Wait
from wpcdc.runtime.handoff import LoopReader


def parts(count: int) -> list[TransactionPart]:
    log = Binlog()
    for post_id in range(1, count + 1):
        row = post_row(post_id)
        log.txn(update(POSTS, row, {**row, "post_title": f"edited {post_id}"}))
    return list(log.log)


class Steps:
    """A source whose steps are given; notes the thread each step ran on."""

    reads_on_loop = True

    def __init__(self, steps: Iterator[SourceStep]) -> None:
        self._steps = steps
        self.threads: list[int] = []
        self.stopped = False
        self.closed = False

    def steps(self) -> Iterator[SourceStep]:
        try:
            for step in self._steps:
                self.threads.append(threading.get_ident())
                yield step
        finally:
            self.closed = True

    def items(self) -> Iterator[SourceItem]:
        raise AssertionError("the loop reader takes steps")

    def stop(self) -> None:
        self.stopped = True


def test_a_wait_hands_on_what_was_read_then_awaits_the_socket() -> None:
    first, second = parts(2)
    ours, server = socket.socketpair()

    async def scenario() -> None:
        reader = LoopReader(Steps(iter([first, Wait(ours, None), second])), capacity=100)
        reader.start()
        batch = await reader.take()
        assert batch.items == [first] and batch.end is None
        taking = asyncio.ensure_future(reader.take())
        await asyncio.sleep(0.05)
        assert not taking.done()  # the socket has nothing yet
        server.send(b"x")
        batch = await asyncio.wait_for(taking, 1)
        assert batch.items == [second]
        assert (await reader.take()).end is not None

    with ours, server:
        asyncio.run(scenario())


def test_a_wait_ends_at_its_deadline_without_data() -> None:
    (part,) = parts(1)
    ours, server = socket.socketpair()

    async def scenario() -> None:
        deadline = time.monotonic() + 0.1
        reader = LoopReader(Steps(iter([Wait(ours, deadline), part])), capacity=100)
        reader.start()
        batch = await asyncio.wait_for(reader.take(), 2)
        assert batch.items == [part] and time.monotonic() >= deadline

    with ours, server:
        asyncio.run(scenario())


def test_the_step_after_blocking_runs_in_a_worker_thread_and_the_rest_on_the_loop() -> None:
    a, b, c = parts(3)
    source = Steps(iter([a, BLOCKING, b, c]))

    async def scenario() -> None:
        reader = LoopReader(source, capacity=100)
        reader.start()
        assert (await reader.take()).items == [a]  # handed on before blocking
        assert (await reader.take()).items == [b, c]

    asyncio.run(scenario())
    loop_thread = source.threads[0]
    # Steps: a, BLOCKING (both on the loop), b (after BLOCKING: a worker), c (the loop).
    assert source.threads[1] == loop_thread and source.threads[3] == loop_thread
    assert source.threads[2] != loop_thread


def test_a_batch_holds_at_most_capacity_row_changes() -> None:
    all_parts = parts(5)

    async def scenario() -> list[int]:
        reader = LoopReader(Steps(iter(all_parts)), capacity=2)
        reader.start()
        sizes = []
        while True:
            batch = await reader.take()
            sizes.append(len(batch.items))
            if batch.end is not None:
                return sizes

    assert asyncio.run(scenario()) == [2, 2, 1]


def test_a_source_error_ends_the_batch_with_it_and_stop_closes_the_source() -> None:
    (part,) = parts(1)

    def failing() -> Iterator[SourceStep]:
        yield part
        raise ConnectionResetError("reset")

    source = Steps(failing())

    async def scenario() -> None:
        reader = LoopReader(source, capacity=100)
        reader.start()
        batch = await reader.take()
        assert batch.items == [part]
        assert isinstance(batch.end.error, ConnectionResetError)  # type: ignore[union-attr]
        reader.stop()

    asyncio.run(scenario())
    assert source.stopped and source.closed


def test_stop_during_a_blocking_step_closes_the_source_once_the_step_is_done() -> None:
    release = threading.Event()

    def slow() -> Iterator[SourceStep]:
        yield BLOCKING
        release.wait(5)  # a connect or a backoff wait, ended by stop
        yield from parts(1)

    source = Steps(slow())

    async def scenario() -> None:
        reader = LoopReader(source, capacity=100)
        reader.start()
        taking = asyncio.ensure_future(reader.take())
        await asyncio.sleep(0.05)
        taking.cancel()
        reader.stop()
        assert source.stopped and not source.closed  # a thread still runs it
        release.set()
        for _ in range(100):
            if source.closed:
                break
            await asyncio.sleep(0.01)
        assert source.closed

    asyncio.run(scenario())

"""The pipeline's bookkeeping with in-memory adapters (the real ones are covered by
the integration tests): order, checkpoints after acknowledgement, failures, stop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import orjson
import pytest
from prometheus_client import CollectorRegistry

from tests.unit.binlog_builder import POSTS, Binlog, post_row, update
from wpcdc.core.acks import AckTracker
from wpcdc.core.checkpoint import Checkpoint
from wpcdc.core.errors import DeliveryFailed
from wpcdc.core.fold import FoldConfig, Folder
from wpcdc.core.mirror import Mirror
from wpcdc.core.records import Headers
from wpcdc.core.rows import Idle, SourceItem
from wpcdc.runtime.metrics import Metrics
from wpcdc.runtime.pipeline import Pipeline, StreamConfig


class ListSource:
    """Yields the given items, then blocks like a binlog at its end until stopped."""

    def __init__(self, items: list[SourceItem]) -> None:
        self._items = items
        self._stopped = threading.Event()

    def items(self) -> Iterator[SourceItem]:
        yield from self._items
        self._stopped.wait(10)

    def stop(self) -> None:
        self._stopped.set()


class MemorySink:
    def __init__(self, fail_after: int | None = None, hold: bool = False) -> None:
        self.records: list[tuple[bytes, bytes]] = []
        self.pending: list[asyncio.Future[None]] = []
        self._fail_after = fail_after
        self._hold = hold

    async def send(
        self, key: bytes, value: bytes, headers: Headers | None = None
    ) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._fail_after is not None and len(self.records) >= self._fail_after:
            future.set_exception(ConnectionError("broker down"))
        elif self._hold:
            self.pending.append(future)
        else:
            future.set_result(None)
        self.records.append((key, value))
        return future

    async def flush(self) -> None:
        pass

    def max_value_size(self, key: bytes, headers: Headers | None = None) -> int:
        return 1_000_000


class MemoryStore:
    def __init__(self) -> None:
        self.saved: list[Checkpoint] = []

    def load(self) -> Checkpoint | None:
        return self.saved[-1] if self.saved else None

    def save(self, checkpoint: Checkpoint) -> None:
        self.saved.append(checkpoint)


def edits(count: int) -> Binlog:
    log = Binlog()
    for post_id in range(1, count + 1):
        row = post_row(post_id)
        log.txn(update(POSTS, row, {**row, "post_title": f"edited {post_id}"}), after_seconds=2)
    return log


def pipeline(
    items: list[SourceItem], sink: MemorySink, store: MemoryStore, start_log: Binlog
) -> Pipeline:
    return Pipeline(
        source=ListSource(items),
        sink=sink,
        store=store,
        folder=Folder(config=FoldConfig(), mirror=Mirror()),
        tracker=AckTracker(),
        start=start_log.log[0].transaction.start,
        config=StreamConfig(source_name="wpcdc://test", checkpoint_interval=0.0),
        metrics=Metrics(CollectorRegistry()),
    )


async def run_until(pipe: Pipeline, condition: object, timeout: float = 5.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(pipe.run(stop))
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)
            if task.done():
                break
    stop.set()
    await task


def test_events_flow_in_order_and_the_checkpoint_follows_acks() -> None:
    log = edits(5)
    idle = Idle(position=log.log[-1].end, wall_time=0.0)  # type: ignore[arg-type]
    sink, store = MemorySink(), MemoryStore()
    pipe = pipeline([*log.log, idle], sink, store, log)
    asyncio.run(run_until(pipe, lambda: len(sink.records) == 5))
    titles = [orjson.loads(v)["data"]["post"]["title"] for _, v in sink.records]
    assert titles == [f"edited {i}" for i in range(1, 6)]
    assert store.saved[-1].position == log.log[-1].end


def test_checkpoint_never_passes_an_unacknowledged_event() -> None:
    log = edits(3)
    sink, store = MemorySink(hold=True), MemoryStore()
    pipe = pipeline(list(log.log), sink, store, log)
    asyncio.run(run_until(pipe, lambda: len(sink.records) >= 2))
    # Nothing acknowledged: the checkpoint stays at the first event's transaction.
    assert store.saved[-1].position == log.log[0].transaction.start


def test_delivery_failure_stops_the_pipeline_without_passing_the_failed_event() -> None:
    log = edits(4)
    idle = Idle(position=log.log[-1].end, wall_time=0.0)  # type: ignore[arg-type]
    sink, store = MemorySink(fail_after=2), MemoryStore()
    pipe = pipeline([*log.log, idle], sink, store, log)

    async def run() -> None:
        await pipe.run(asyncio.Event())

    with pytest.raises(DeliveryFailed, match="broker down"):
        asyncio.run(run())
    # Events 1 and 2 were acknowledged; the third failed: resume at its transaction.
    assert store.saved[-1].position == log.log[2].transaction.start

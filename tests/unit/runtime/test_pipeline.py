"""The pipeline's bookkeeping with in-memory adapters (the real ones are covered by
the integration tests): order, checkpoints after acknowledgement, failures, stop."""

from __future__ import annotations

import asyncio
import gc

import orjson
import pytest
from prometheus_client import CollectorRegistry

from tests.support.binlog_builder import POSTMETA, POSTS, Binlog, meta, post_row, update
from tests.support.fakes import ListSource, MemorySink, MemoryStore
from wpcdc.core.acks import AckTracker
from wpcdc.core.errors import DeliveryFailed
from wpcdc.core.fold import FoldConfig, Folder
from wpcdc.core.mirror import Mirror
from wpcdc.core.rows import Idle, SourceItem
from wpcdc.runtime.metrics import Metrics
from wpcdc.runtime.pipeline import YOUNG_COLLECTION_THRESHOLD, Pipeline, StreamConfig


def edits(count: int) -> Binlog:
    log = Binlog()
    for post_id in range(1, count + 1):
        row = post_row(post_id)
        log.txn(update(POSTS, row, {**row, "post_title": f"edited {post_id}"}), after_seconds=2)
    return log


def pipeline(
    items: list[SourceItem],
    sink: MemorySink,
    store: MemoryStore,
    start_log: Binlog,
    metrics: Metrics | None = None,
) -> Pipeline:
    return Pipeline(
        source=ListSource(items),
        sink=sink,
        store=store,
        folder=Folder(config=FoldConfig(), mirror=Mirror()),
        tracker=AckTracker(),
        start=start_log.log[0].transaction.start,
        config=StreamConfig(source_name="wpcdc://test", checkpoint_interval=0.0),
        metrics=metrics or Metrics(CollectorRegistry()),
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


def test_the_young_generation_is_collected_less_often_while_streaming_only() -> None:
    log = edits(2)
    sink, store = MemorySink(), MemoryStore()
    pipe = pipeline(list(log.log), sink, store, log)
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []

    def streaming() -> bool:
        seen.append(gc.get_threshold())
        return len(sink.records) == 2

    asyncio.run(run_until(pipe, streaming))
    assert seen[-1] == (YOUNG_COLLECTION_THRESHOLD, *before[1:])  # when the events were out
    assert gc.get_threshold() == before  # a process-wide setting: given back


def test_row_changes_and_transactions_read_are_counted_per_table() -> None:
    log = edits(3)
    log.txn(update(POSTMETA, meta(9, 1, "k", "a"), meta(9, 1, "k", "b")), after_seconds=2)
    sink, store = MemorySink(), MemoryStore()
    registry = CollectorRegistry()
    pipe = pipeline(list(log.log), sink, store, log, Metrics(registry))
    asyncio.run(run_until(pipe, lambda: len(sink.records) == 4))
    sample = registry.get_sample_value
    assert sample("wpcdc_row_changes_total", {"table": "posts"}) == 3
    assert sample("wpcdc_row_changes_total", {"table": "postmeta"}) == 1
    assert sample("wpcdc_transactions_total") == 4

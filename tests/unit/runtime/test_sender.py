"""The sender: one callback per delivery future (one per batch), which
acknowledges every event the batch carried in the ack tracker (issue 8)."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from tests.support.binlog_builder import POSTMETA, POSTS, Binlog, insert, meta, post_row, update
from wpcdc.core.acks import AckTracker
from wpcdc.core.errors import DeliveryFailed
from wpcdc.core.fold import ClosedGroup, FoldConfig, Folder
from wpcdc.core.mirror import Mirror
from wpcdc.core.records import Headers
from wpcdc.runtime.metrics import Metrics
from wpcdc.runtime.sender import Sender


class BatchSink:
    """Every record goes in the open batch; ``cut`` starts a new one. One future per batch."""

    def __init__(self) -> None:
        self.batches: list[asyncio.Future[None]] = []
        self.keys: list[list[bytes]] = []
        self._open = False

    async def send(
        self, key: bytes, value: bytes, headers: Headers | None = None
    ) -> asyncio.Future[None]:
        if not self._open:
            self.batches.append(asyncio.get_running_loop().create_future())
            self.keys.append([])
            self._open = True
        self.keys[-1].append(key)
        return self.batches[-1]

    def cut(self) -> None:
        self._open = False

    async def flush(self) -> None:
        return None

    def max_value_size(self, key: bytes, headers: Headers | None = None) -> int:
        return 1_000_000


def groups(posts: int) -> list[ClosedGroup]:
    """One closed group per post: a title edit and a meta row, so two events each."""
    log = Binlog()
    mirror = Mirror()
    mirror.load_posts(1, [(p, "post", "publish", 0) for p in range(1, posts + 1)])
    folder = Folder(config=FoldConfig(), mirror=mirror)
    for post_id in range(1, posts + 1):
        row = post_row(post_id, status="publish")
        folder.feed(log.txn(update(POSTS, row, {**row, "post_title": "new"})))
        folder.feed(log.txn(insert(POSTMETA, meta(100 + post_id, post_id, "color", "red"))))
    closed = folder.close_all()
    assert [len(g.events) for g in closed] == [2] * posts
    return closed


def test_a_batch_acknowledges_every_group_it_carried() -> None:
    async def main() -> None:
        sink, tracker = BatchSink(), AckTracker()
        registry = CollectorRegistry()
        sender = Sender(
            sink=sink, tracker=tracker, source_name="wpcdc://db/wp", metrics=Metrics(registry)
        )
        closed = groups(3)
        await sender.send(closed[0])
        await sender.send(closed[1])
        sink.cut()
        await sender.send(closed[2])
        assert [len(k) for k in sink.keys] == [4, 2]
        assert tracker.in_flight == 3
        sink.batches[1].set_result(None)
        await asyncio.sleep(0)
        assert tracker.in_flight == 2  # the third post's group only
        sink.batches[0].set_result(None)
        await asyncio.sleep(0)
        assert tracker.in_flight == 0
        sender.raise_on_failure()
        counted = {
            event_type: registry.get_sample_value("wpcdc_events_total", {"type": event_type})
            for event_type in ("post_updated", "post_meta_changed")
        }
        assert counted == {"post_updated": 3.0, "post_meta_changed": 3.0}

    asyncio.run(main())


def test_a_failed_batch_fails_the_sender_and_acknowledges_nothing() -> None:
    async def main() -> None:
        sink, tracker = BatchSink(), AckTracker()
        sender = Sender(
            sink=sink,
            tracker=tracker,
            source_name="wpcdc://db/wp",
            metrics=Metrics(CollectorRegistry()),
        )
        for group in groups(2):
            await sender.send(group)
        sink.batches[0].set_exception(DeliveryFailed("broker down"))
        await asyncio.wait_for(sender.failed(), 1)
        assert tracker.in_flight == 2
        try:
            sender.raise_on_failure()
        except DeliveryFailed as failure:
            assert "did not acknowledge event" in str(failure) and "broker down" in str(failure)
        else:
            raise AssertionError("the failure was not raised")

    asyncio.run(main())

"""In-memory stand-ins for the adapters the runtime drives, for unit tests.

A binlog source (:class:`ListSource`), a sink (:class:`MemorySink`), a
checkpoint store (:class:`MemoryStore`), a consistent read over fixed posts
(:class:`FakeRead`) and a progress reporter (:class:`NoProgress`). Each
satisfies the protocol its real adapter does (``wpcdc.runtime.sender.Sink``,
``wpcdc.core.checkpoint.CheckpointStore``, ``wpcdc.runtime.snapshot.ConsistentRead``,
...) and records what it was given, so tests assert on it. The real adapters
are covered by the integration tests.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from wpcdc.core.checkpoint import Checkpoint
from wpcdc.core.errors import DeliveryFailed
from wpcdc.core.positions import Position
from wpcdc.core.records import Headers
from wpcdc.core.rows import SourceItem
from wpcdc.core.snapshot_events import PostBundle, PostRange
from wpcdc.mysql.consistent import SnapshotPoint

# Where a FakeRead reads unless told otherwise.
SNAPSHOT_POSITION = Position("binlog.000001", 1000)


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


@dataclass
class MemorySink:
    """Keeps every record sent, in order (``records``, ``sent``).

    A delivery is acknowledged at once, or, with ``hold``, left pending in
    ``pending``. With ``fail_after``, that many deliveries succeed and every later
    one fails with DeliveryFailed, as the Kafka sink's do. ``value_limit`` is the
    largest value it accepts (``max_value_size``).
    """

    fail_after: int | None = None
    hold: bool = False
    value_limit: int = 1_000_000
    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    headers: list[Headers] = field(default_factory=list)
    pending: list[asyncio.Future[None]] = field(default_factory=list)

    @property
    def sent(self) -> list[tuple[bytes, dict[str, Any], Headers]]:
        """Every record sent as (key, decoded envelope, headers)."""
        return [
            (key, orjson.loads(value), headers)
            for (key, value), headers in zip(self.records, self.headers, strict=True)
        ]

    async def send(
        self, key: bytes, value: bytes, headers: Headers | None = None
    ) -> asyncio.Future[None]:
        acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail_after is not None and len(self.records) >= self.fail_after:
            acked.set_exception(DeliveryFailed("broker down"))
        elif self.hold:
            self.pending.append(acked)
        else:
            acked.set_result(None)
        self.records.append((key, value))
        self.headers.append(headers or [])
        return acked

    async def flush(self) -> None:
        return None

    def max_value_size(self, key: bytes, headers: Headers | None = None) -> int:
        return self.value_limit


@dataclass
class MemoryStore:
    """A checkpoint store that keeps every checkpoint saved; ``load`` gives the last."""

    saved: list[Checkpoint] = field(default_factory=list)

    def load(self) -> Checkpoint | None:
        return self.saved[-1] if self.saved else None

    def save(self, checkpoint: Checkpoint) -> None:
        self.saved.append(checkpoint)


@dataclass
class FakeRead:
    """A consistent read over fixed posts, filtering as the SQL does."""

    posts: dict[int, list[PostBundle]]
    position: Position = SNAPSHOT_POSITION
    engines: dict[str, str] = field(default_factory=dict)
    closed: bool = False

    @property
    def point(self) -> SnapshotPoint:
        return SnapshotPoint(self.position, 1_800_000_000, "binlog_snapshot")

    def blogs(self) -> list[int]:
        return sorted(self.posts)

    def table_engines(self, blogs: Sequence[int]) -> dict[str, str]:
        return self.engines

    def _select(self, posts: PostRange) -> list[PostBundle]:
        return [
            b
            for b in self.posts[posts.blog_id]
            if int(b.post["ID"]) > posts.after_id
            and (posts.max_id is None or int(b.post["ID"]) <= posts.max_id)
            and (not posts.post_types or b.post["post_type"] in posts.post_types)
            and b.post["post_type"] != "revision"
        ]

    def count(self, posts: PostRange) -> int:
        return len(self._select(posts))

    def chunk(self, posts: PostRange, limit: int) -> list[PostBundle]:
        return self._select(posts)[:limit]

    def close(self) -> None:
        self.closed = True


class NoProgress:
    """A progress reporter that shows nothing and keeps the counts it was given."""

    def __init__(self) -> None:
        self.done: list[int] = []

    def start(self, total: int, done: int) -> None:
        self.total = total
        self.done.append(done)

    def advance(self, done: int) -> None:
        self.done.append(done)

    def finish(self) -> None:
        pass

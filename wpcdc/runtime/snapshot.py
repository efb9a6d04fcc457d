"""The initial load, ``wpcdc snapshot``, run: every post as one ``post_snapshot`` event
at one binlog position P, then P saved as the streaming checkpoint.

This module owns the run (:class:`Snapshotter`): read the blogs in primary-key
chunks inside one consistent read, send each chunk's events, and save the
progress of a full snapshot after every chunk whose events the broker
acknowledged (promise "checkpoint after ack", docs/ARCHITECTURE.md), in a
state file next to the checkpoint (:class:`SnapshotStateFile`); then the
streaming checkpoint. Its adapters are passed in: the consistent read
(``wpcdc.mysql.consistent.ConsistentSnapshot``), the sink
(``wpcdc.kafka.sink.KafkaSink``), the stores and the progress reporter
(``wpcdc.runtime.progress``). It also refuses to stream while a full snapshot
is unfinished (:func:`refuse_unfinished`).

The decisions (what to read, start/resume/refuse, the state and the
checkpoint it becomes, covered ranges on resume) are pure, in
``wpcdc.core.snapshot_state``; the wiring is ``wpcdc.commands.snapshot``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from wpcdc.core.checkpoint import Checkpoint, CheckpointStore
from wpcdc.core.errors import PreflightFailed, SnapshotInterrupted, SnapshotUnfinished
from wpcdc.core.events import Event, SnapshotData
from wpcdc.core.fold import FoldConfig
from wpcdc.core.mirror import Mirror
from wpcdc.core.positions import Position
from wpcdc.core.records import encode
from wpcdc.core.snapshot_events import PostBundle, PostRange, snapshot_event, wanted
from wpcdc.core.snapshot_state import (
    MAX_POST_ID,
    SnapshotOptions,
    SnapshotState,
    Start,
    final_checkpoint,
    non_transactional,
    select_blogs,
)
from wpcdc.runtime.files import JsonFile
from wpcdc.runtime.progress import ProgressReporter
from wpcdc.runtime.sender import Sink

if TYPE_CHECKING:
    from wpcdc.mysql.consistent import SnapshotPoint

log = logging.getLogger("wpcdc.snapshot")


# --- the state file ------------------------------------------------------------------


def state_path(checkpoint_path: Path) -> Path:
    """Where a full snapshot keeps its progress: beside the checkpoint, on the same volume."""
    return checkpoint_path.with_name(checkpoint_path.name + ".snapshot")


class SnapshotStateFile(JsonFile[SnapshotState]):
    """The state of a full snapshot as a JSON file, written atomically."""

    document_type = SnapshotState
    what = "snapshot state"
    when_damaged = "Move it away and run `wpcdc snapshot --force` to load every post again."


def refuse_unfinished(checkpoint_path: Path) -> None:
    """Raise SnapshotUnfinished while an unfinished full snapshot's state file exists:
    streaming from its position now would leave posts it has not read yet unloaded."""
    path = state_path(checkpoint_path)
    state = SnapshotStateFile(path).load()
    if state is not None and not state.done:
        raise SnapshotUnfinished(
            f"a snapshot is unfinished ({path}): run `wpcdc snapshot` to finish it (it "
            "continues where it stopped), then `wpcdc run`. To give it up, delete that file "
            "(and the checkpoint, to start from the end of the binlog)."
        )


# --- the run -------------------------------------------------------------------------


class ConsistentRead(Protocol):
    """One consistent-snapshot transaction (wpcdc.mysql.consistent.ConsistentSnapshot); blocking."""

    @property
    def point(self) -> SnapshotPoint: ...

    def blogs(self) -> list[int]: ...

    def table_engines(self, blogs: Sequence[int]) -> dict[str, str]: ...

    def count(self, posts: PostRange) -> int: ...

    def chunk(self, posts: PostRange, limit: int) -> list[PostBundle]: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class BlogPlan:
    blog_id: int
    after_id: int  # read IDs above this
    posts: int  # how many posts that is


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    start: Start
    # Where the events were read (this run's consistent snapshot).
    read_at: Position
    plans: tuple[BlogPlan, ...]
    # The checkpoint written (full snapshots), None for limited ones and dry runs.
    checkpoint: Checkpoint | None = None
    events: int = 0
    oversize: int = 0
    meta_errors: int = 0
    chunks: int = 0
    dry_run: bool = False
    locking: str = ""
    locked_seconds: float = 0.0


@dataclass(eq=False, kw_only=True)
class Snapshotter:
    """Runs one snapshot: read chunks at one position, send, save progress after acks.

    ``open_read`` opens the consistent snapshot (blocking; run in a thread), the
    sink needs to be started by the caller, ``state_file`` and ``checkpoints``
    are only used by full snapshots. ``stop`` set (by a signal) ends the run
    between two chunks with SnapshotInterrupted.
    """

    open_read: Callable[[], ConsistentRead]
    sink: Sink | None
    options: SnapshotOptions
    start: Start
    fold: FoldConfig
    source_name: str
    state_file: SnapshotStateFile | None
    checkpoints: CheckpointStore | None
    progress: ProgressReporter
    state: SnapshotState | None = None
    stop: asyncio.Event | None = None
    # The site state links are computed from (wpcdc.core.site); None: no links.
    mirror: Mirror | None = None
    _stop: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _events: int = field(init=False, default=0)
    _oversize: int = field(init=False, default=0)
    _meta_errors: int = field(init=False, default=0)
    _chunks: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.start is not Start.LIMITED and not self.options.dry_run:
            assert self.state_file is not None and self.checkpoints is not None
        if self.start is Start.RESUME:
            assert self.state is not None
        else:
            self.state = None
        if self.stop is not None:
            self._stop = self.stop

    async def run(self) -> SnapshotResult:
        read = await asyncio.to_thread(self.open_read)
        try:
            return await self._run(read)
        finally:
            await asyncio.to_thread(read.close)

    async def _run(self, read: ConsistentRead) -> SnapshotResult:
        point = read.point
        found = await asyncio.to_thread(read.blogs)
        blogs = select_blogs(found, self.options.blogs)
        bad = non_transactional(await asyncio.to_thread(read.table_engines, blogs))
        if bad:
            raise PreflightFailed(
                "these tables are not InnoDB, so no consistent snapshot can isolate them: "
                + ", ".join(bad)
                + ". Convert them (ALTER TABLE ... ENGINE=InnoDB) and run the snapshot again."
            )
        log.info(
            "consistent snapshot at %s (%s%s)",
            point.position,
            point.method,
            f", writers blocked {point.locked_seconds * 1000:.0f} ms"
            if point.locked_seconds
            else "",
        )
        if self.start is Start.RESUME:
            assert self.state is not None
            log.info(
                "resuming the snapshot taken at %s: the remaining posts are read at %s",
                self.state.position,
                point.position,
            )
            self.state = self.state.with_blogs(blogs)
        elif self.start is Start.FRESH and not self.options.dry_run:
            self.state = SnapshotState(position=point.position, blogs=blogs)
        plans = await asyncio.to_thread(self._plan, read, blogs)
        result = SnapshotResult(
            start=self.start,
            read_at=point.position,
            plans=plans,
            dry_run=self.options.dry_run,
            locking=point.method,
            locked_seconds=point.locked_seconds,
        )
        if self.options.dry_run:
            return result
        if self.state is not None:
            self._save()
        done_before = self.state.emitted if self.state is not None else 0
        self.progress.start(done_before + sum(p.posts for p in plans), done_before)
        try:
            for plan in plans:
                await self._read_blog(read, plan)
        finally:
            self.progress.finish()
        checkpoint = None
        if self.state is not None:
            self.state = self.state.finished()
            checkpoint = final_checkpoint(self.state)
            assert self.checkpoints is not None
            # Checkpoint first: killed between the two, a rerun resumes with
            # nothing left to read and writes the same checkpoint again.
            self.checkpoints.save(checkpoint)
            self._save()
        return replace(
            result,
            checkpoint=checkpoint,
            events=self._events,
            oversize=self._oversize,
            meta_errors=self._meta_errors,
            chunks=self._chunks,
        )

    def _plan(self, read: ConsistentRead, blogs: Sequence[int]) -> tuple[BlogPlan, ...]:
        """Per blog, where to start and how many posts remain (counted in the snapshot)."""
        plans = []
        ids = self.options.ids
        for blog in blogs:
            if self.state is not None:
                after = self.state.after_id(blog)
                if after is None:
                    continue  # completed in an earlier run
            else:
                after = max(ids.low - 1, 0) if ids is not None else 0
            posts = self._range(blog).after(after)
            plans.append(BlogPlan(blog, after, read.count(posts)))
        return tuple(plans)

    def _range(self, blog_id: int) -> PostRange:
        """The posts of ``blog_id`` the options ask for (``after_id`` still 0)."""
        ids = self.options.ids
        return PostRange(
            blog_id,
            max_id=ids.high if ids is not None else None,
            post_types=tuple(self.options.post_types or ()),
        )

    async def _read_blog(self, read: ConsistentRead, plan: BlogPlan) -> None:
        limit = self.options.chunk_size
        posts = self._range(plan.blog_id)

        def fetch(after: int) -> asyncio.Future[list[PostBundle]]:
            return asyncio.ensure_future(asyncio.to_thread(read.chunk, posts.after(after), limit))

        after = plan.after_id
        pending: asyncio.Future[list[PostBundle]] | None = fetch(after)
        try:
            while pending is not None:
                bundles = await pending
                pending = None
                high = MAX_POST_ID if len(bundles) < limit else int(bundles[-1].post["ID"])
                if high != MAX_POST_ID:
                    # The next read overlaps with sending this chunk and waiting for acks.
                    pending = fetch(high)
                await self._chunk(read.point, plan.blog_id, after, high, bundles)
                after = high
                if self._stop.is_set():
                    raise SnapshotInterrupted(
                        "stopped by a signal"
                        + (
                            "; run `wpcdc snapshot` again to continue from the last acknowledged chunk"
                            if self.state is not None
                            else ""
                        )
                    )
        finally:
            if pending is not None:
                # The connection must be idle before it is closed.
                with contextlib.suppress(Exception):
                    await pending

    async def _chunk(
        self, point: SnapshotPoint, blog_id: int, after: int, high: int, bundles: list[PostBundle]
    ) -> None:
        events = [
            snapshot_event(
                bundle,
                position=point.position,
                timestamp=point.timestamp,
                config=self.fold,
                reason=self.options.reason,
                mirror=self.mirror,
            )
            for bundle in bundles
            if wanted(bundle, self.fold)
        ]
        post_ids = [event.post_id for event in events]
        if self.state is not None:
            self.state = self.state.chunk_sent(blog_id, after, point.position, post_ids)
            self._save()
        await self._send(events)
        self._chunks += 1
        self._events += len(events)
        if self.state is not None:
            self.state = self.state.chunk_acknowledged(
                blog_id, after, high, point.position, post_ids
            )
            self._save()
            self.progress.advance(self.state.emitted)
        else:
            self.progress.advance(self._events)

    async def _send(self, events: list[Event]) -> None:
        """Send the events and wait until the broker acknowledged every one."""
        sink = self.sink
        assert sink is not None
        deliveries = []
        for event in events:
            record = encode(event, self.source_name, sink.max_value_size)
            if record.omitted:
                self._oversize += 1
                log.warning(
                    "event %s exceeds kafka.max_message_bytes: sent without %s",
                    event.id,
                    ", ".join(record.omitted),
                )
            if isinstance(event.data, SnapshotData):
                self._meta_errors += sum(1 for m in event.data.meta if m.error is not None)
            deliveries.append(await sink.send(record.key, record.value, record.headers))
        if deliveries:
            # DeliveryFailed from the first failed one; the progress is not saved.
            await asyncio.gather(*deliveries)

    def _save(self) -> None:
        assert self.state_file is not None and self.state is not None
        self.state_file.save(self.state)

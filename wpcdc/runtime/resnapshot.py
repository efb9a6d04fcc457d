"""Live re-snapshots while streaming: the coordinator of the DBLog watermark windows.

This module owns serving ``wpcdc resnapshot`` requests inside the running
pipeline (the method and its pure parts are in :mod:`wpcdc.core.resnapshot`):
it meets requests and watermark rows in the binlog, opens a window per chunk
(the signal table writes the low watermark, reads the chunk's posts and writes
the high watermark, in a thread), notes the posts the stream changed inside a
window, and at the high watermark sends the posts left as ``post_snapshot``
events through the :class:`~wpcdc.runtime.sender.Sender`. It tells the
checkpointer where to hold the checkpoint (where each unfinished request was
asked, so a restart meets it again: promise "nothing missed",
docs/ARCHITECTURE.md) and marks a request done once a saved checkpoint has
passed its last watermark, i.e. once its events are acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Protocol

from wpcdc.core.checkpoint import Checkpoint
from wpcdc.core.fold import ClosedGroup, FoldConfig, Folder
from wpcdc.core.positions import Coordinate, Position
from wpcdc.core.resnapshot import (
    LOW,
    Chunk,
    Done,
    Request,
    Windows,
    first_chunk,
    next_chunk,
    requests_in,
)
from wpcdc.core.rows import TransactionPart
from wpcdc.core.snapshot_events import PostBundle, snapshot_event, wanted
from wpcdc.runtime.sender import Sender

log = logging.getLogger("wpcdc.stream")


class SignalTable(Protocol):
    """The signal table's I/O (wpcdc.mysql.signal.SignalTable); blocking, run in threads."""

    def is_done(self, request_id: int) -> bool: ...

    def read_window(self, chunk: Chunk, token: str) -> list[PostBundle]: ...

    def mark_done(self, request_id: int) -> None: ...


@dataclass(eq=False, kw_only=True)
class Resnapshots:
    """Serves re-snapshot requests met in the binlog, one watermark window at a time."""

    signals: SignalTable
    folder: Folder
    sender: Sender
    fold_config: FoldConfig
    chunk_size: int
    _windows: Windows = field(init=False, default_factory=Windows)
    _reads: dict[str, asyncio.Future[list[PostBundle]]] = field(init=False, default_factory=dict)
    _requests: dict[int, Position] = field(
        init=False, default_factory=dict
    )  # in progress: where each was asked
    _done: list[Done] = field(init=False, default_factory=list)

    @property
    def watching(self) -> bool:
        """Whether a window is open: then :meth:`observe` must see every part. Else
        only parts with a signal-table row concern it (the stream skips the others)."""
        return bool(self._windows)

    async def observe(self, item: TransactionPart) -> None:
        """Watch the row changes of ``item`` (after the fold took them) for
        watermarks, requests, and changes of posts inside an open window."""
        for change in item.changes:
            mark = self._windows.watermark(change)
            if mark is not None:
                kind, token = mark
                if kind == LOW:
                    self._windows.opened(token)
                else:
                    await self._close_window(token, item)
            elif self._windows:
                key = self.folder.target(change)
                if key is not None:
                    self._windows.changed(key)
        for request_id, row in requests_in(item.changes):
            if await asyncio.to_thread(self.signals.is_done, request_id):
                continue  # met again on a replay, and already served
            try:
                request = Request.parse(request_id, row.get("data"))
            except ValueError as exc:
                log.warning("ignoring re-snapshot request: %s", exc)
                continue
            log.info("re-snapshot %d requested: %s", request_id, request.to_json())
            self._requests[request_id] = item.transaction.start
            self._open_window(first_chunk(request, self.chunk_size))

    def hold(self) -> Position | None:
        """Where the oldest unfinished request was asked: the checkpoint stays
        there, so that a restart meets the request again."""
        return min(self._requests.values(), key=Position.key) if self._requests else None

    def saved(self, checkpoint: Checkpoint) -> None:
        """Mark done the requests whose last watermark ``checkpoint`` has passed:
        their events are acknowledged."""
        passed = [d for d in self._done if d.position.key() < checkpoint.position.key()]
        for done in passed:
            self.signals.mark_done(done.request_id)
            self._done.remove(done)

    def cancel(self) -> None:
        """Stop waiting for the window reads in progress (the pipeline is ending)."""
        for read in self._reads.values():
            read.cancel()

    def _open_window(self, chunk: Chunk) -> None:
        token = self._windows.start(chunk)
        self._reads[token] = asyncio.ensure_future(
            asyncio.to_thread(self.signals.read_window, chunk, token)
        )

    async def _close_window(self, token: str, item: TransactionPart) -> None:
        read = await self._reads.pop(token)
        chunk, keep = self._windows.close(token, read)
        # Older changes of these posts go first; the snapshot is newer than all of them.
        for group in self.folder.close_posts((b.blog_id, int(b.post["ID"])) for b in keep):
            await self.sender.send(group)
        position = item.transaction.start
        for bundle in keep:
            if not wanted(bundle, self.fold_config):
                continue
            event = snapshot_event(
                bundle,
                position=position,
                timestamp=item.transaction.timestamp,
                config=self.fold_config,
                reason="requested",
                mirror=self.folder.mirror,
            )
            # `last` at the very start: a snapshot covers no row change of the stream.
            await self.sender.send(
                ClosedGroup(event.blog_id, event.post_id, position, Coordinate(0, 0, 0), [event])
            )
        following = next_chunk(chunk, read, self.chunk_size)
        if following is not None:
            self._open_window(following)
            return
        request_id = chunk.request.request_id
        self._requests.pop(request_id, None)
        self._done.append(Done(request_id, position))
        log.info("re-snapshot %d emitted", request_id)

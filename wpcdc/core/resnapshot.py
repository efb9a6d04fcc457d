"""Live re-snapshot: re-emit whole posts on request while `wpcdc run` streams.

The method is DBLog's watermarks (Netflix) as Debezium's incremental snapshots
use them. A request is a row inserted into ``{prefix}wpcdc_signal`` (``wpcdc
resnapshot`` writes it). When the streamer meets it in the binlog it, for each
chunk of the requested posts:

1. writes a *low* watermark row, 2. reads the chunk's posts (a plain read),
3. writes a *high* watermark row;

and, as it keeps reading the binlog,

- between the low and the high watermark, notes every post that changed: the
  stream carries a state at least as new as the chunk read, so that post is
  dropped from the chunk;
- at the high watermark, closes the fold groups of the remaining posts (their
  older events go first), then emits one ``post_snapshot`` (reason
  ``requested``) per remaining post at the watermark's position.

So a re-snapshotted state never lands after a newer streamed change of the same
post. A request is marked done once the checkpoint has passed its last high
watermark; a request seen again on replay is skipped when done, run again
otherwise (whole-post events are idempotent for consumers).

This module holds the pure part: requests, chunks and windows. The table I/O
is in wpcdc.mysql.signal; wpcdc.runtime.resnapshot drives both inside the
running pipeline.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from wpcdc.core.positions import Position
from wpcdc.core.rows import Op, RowChange, TableKind
from wpcdc.core.snapshot_events import PostBundle

PostKey = tuple[int, int]

REQUEST = "snapshot"
LOW = "low"
HIGH = "high"


@dataclass(frozen=True, slots=True)
class Request:
    """Posts to re-emit: exact ids, or the id range ``low``..``high``, of one blog."""

    request_id: int
    blog_id: int
    ids: tuple[int, ...] = ()
    low: int | None = None
    high: int | None = None

    @classmethod
    def parse(cls, request_id: int, data: Any) -> Request:
        """From the signal row's JSON; raises ValueError with what is wrong."""
        try:
            spec = orjson.loads(data) if isinstance(data, str | bytes) else data
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"signal {request_id}: data is not JSON ({exc})") from None
        if not isinstance(spec, dict):
            raise ValueError(f"signal {request_id}: data must be a JSON object")
        blog = int(spec.get("blog", 1))
        ids = tuple(int(i) for i in spec.get("posts", ()))
        low, high = spec.get("from"), spec.get("to")
        if not ids and (low is None or high is None):
            raise ValueError(f'signal {request_id}: give "posts": [ids] or "from"/"to" ids')
        return cls(
            request_id,
            blog,
            ids,
            None if low is None else int(low),
            None if high is None else int(high),
        )

    def to_json(self) -> str:
        spec: dict[str, Any] = {"blog": self.blog_id}
        if self.ids:
            spec["posts"] = list(self.ids)
        else:
            spec["from"], spec["to"] = self.low, self.high
        return orjson.dumps(spec).decode()


@dataclass(frozen=True, slots=True)
class Chunk:
    """The part of a request one watermark window reads."""

    request: Request
    index: int
    ids: tuple[int, ...] = ()  # for an ids request
    after_id: int = 0  # for a range request: ID > after_id ...
    limit: int = 0  # ... at most limit posts, up to request.high


def first_chunk(request: Request, size: int) -> Chunk:
    if request.ids:
        return Chunk(request, 0, ids=tuple(sorted(set(request.ids)))[:size])
    assert request.low is not None
    return Chunk(request, 0, after_id=request.low - 1, limit=size)


def next_chunk(chunk: Chunk, read: Sequence[PostBundle], size: int) -> Chunk | None:
    """The chunk after ``chunk`` (which read ``read``), or None when the request is done."""
    request = chunk.request
    if request.ids:
        remaining = tuple(sorted(set(request.ids)))[(chunk.index + 1) * size :]
        return Chunk(request, chunk.index + 1, ids=remaining[:size]) if remaining else None
    if len(read) < chunk.limit:
        return None
    last = int(read[-1].post["ID"])
    assert request.high is not None
    if last >= request.high:
        return None
    return Chunk(request, chunk.index + 1, after_id=last, limit=size)


@dataclass(slots=True)
class Window:
    chunk: Chunk
    token: str
    open: bool = False  # the low watermark was seen
    changed: set[PostKey] = field(default_factory=set)


class Windows:
    """The watermark windows in progress, keyed by a token the watermark rows carry."""

    def __init__(self) -> None:
        self._windows: dict[str, Window] = {}

    def __bool__(self) -> bool:
        return bool(self._windows)

    def start(self, chunk: Chunk) -> str:
        """Register a window before its low watermark is written (the binlog may show
        the watermark before the write call returns)."""
        token = uuid.uuid4().hex
        self._windows[token] = Window(chunk, token)
        return token

    def watermark(self, change: RowChange) -> tuple[str, str] | None:
        """For a signal-table insert that is a watermark of ours: (kind, token)."""
        if change.table.kind is not TableKind.SIGNAL or change.op is not Op.INSERT:
            return None
        row = change.image
        kind = str(row.get("kind"))
        if kind not in (LOW, HIGH):
            return None
        try:
            token = str(orjson.loads(row.get("data") or b"{}").get("window", ""))
        except (orjson.JSONDecodeError, AttributeError):
            return None
        if token not in self._windows:
            return None  # another run's watermark (replayed binlog): not ours to act on
        return kind, token

    def opened(self, token: str) -> None:
        self._windows[token].open = True

    def changed(self, key: PostKey) -> None:
        """A post changed in the binlog: drop it from every open window's chunk."""
        for window in self._windows.values():
            if window.open:
                window.changed.add(key)

    def close(self, token: str, read: Sequence[PostBundle]) -> tuple[Chunk, list[PostBundle]]:
        """At the high watermark: the chunk and the posts to emit (unchanged in the window)."""
        window = self._windows.pop(token)
        keep = [b for b in read if (b.blog_id, int(b.post["ID"])) not in window.changed]
        return window.chunk, keep


@dataclass(frozen=True, slots=True)
class Done:
    """A request whose last window closed at ``position``: done once checkpointed."""

    request_id: int
    position: Position


def watermark_data(token: str, chunk: Chunk) -> str:
    return orjson.dumps(
        {"window": token, "request": chunk.request.request_id, "chunk": chunk.index}
    ).decode()


def requests_in(changes: Sequence[RowChange]) -> list[tuple[int, Mapping[str, Any]]]:
    """New re-snapshot requests among row changes: (signal row id, row)."""
    return [
        (int(c.image["id"]), c.image)
        for c in changes
        if c.table.kind is TableKind.SIGNAL
        and c.op is Op.INSERT
        and str(c.image.get("kind")) == REQUEST
    ]

"""The initial load, ``wpcdc snapshot``: every post as one ``post_snapshot`` event at one
binlog position P, then P saved as the streaming checkpoint.

This module owns the snapshot's decisions and its run:

* what to read: every blog, or a limited selection (SnapshotOptions), in
  primary-key chunks, and whether to start, resume or refuse (decide_start);
* the progress of a full snapshot (SnapshotState), saved after every chunk whose
  events the broker acknowledged, in a state file next to the checkpoint
  (SnapshotStateFile), and the streaming checkpoint it becomes (final_checkpoint);
* progress on screen: a line with posts/s and ETA on a terminal, log lines otherwise;
* the run (Snapshotter), with its adapters passed in: the consistent read
  (wpcdc.mysql.database.ConsistentSnapshot), the sink (wpcdc.kafka.sink.KafkaSink) and the
  stores. Everything but Snapshotter.run and the stores is pure.

Resume. A full snapshot reads every blog inside one consistent-snapshot
transaction at P. Killed, it leaves its state file: the blogs and the ID ranges
whose events were acknowledged, each with the position it was read at. The rerun
opens a new consistent snapshot at P2 and reads only the rest there. The
streaming checkpoint stays P (the posts loaded at P must get every change after
P) with *covered ranges* for the posts read at P2: the fold skips their changes
before P2, which their snapshot already holds, so no older state lands after a
newer one in their partition.

One chunk may have been in flight at the kill: some of its events may be on the
topic although its progress was not saved. The rerun sends those posts again
(read at P2: other ids, later sequences). A post of that chunk that the rerun no
longer finds (deleted in between) is left out of the covered ranges, or covered
only up to the position it was sent at, so that its deletion streams.

Limited snapshots (``--blog``, ``--post-type``, ``--ids``) re-emit posts: no
state file, no checkpoint change, allowed while a checkpoint exists; a killed one
is simply run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TextIO

import orjson

from wpcdc.core.checkpoint import Checkpoint, CheckpointStore, CoveredRange
from wpcdc.core.errors import ConfigError, PreflightFailed, WpcdcError
from wpcdc.core.events import Event, SnapshotData, fit
from wpcdc.core.fold import FoldConfig
from wpcdc.core.positions import Coordinate, Position, file_index
from wpcdc.core.snapshot_events import PostBundle, snapshot_event, wanted
from wpcdc.runtime.files import JsonFile
from wpcdc.runtime.pipeline import CONTENT_TYPE_HEADER, Headers, Sink

if TYPE_CHECKING:
    from wpcdc.mysql.database import SnapshotPoint

log = logging.getLogger("wpcdc.snapshot")

# The high end of the last range of a blog: every ID from there on.
MAX_POST_ID: Final = 2**63 - 1
STATE_FORMAT_VERSION: Final = 1
# Consistent reads are only consistent on transactional engines.
TRANSACTIONAL_ENGINES: Final = frozenset({"innodb"})


# --- what to read ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdRange:
    low: int
    high: int


def parse_id_range(text: str) -> IdRange:
    """``LOW:HIGH`` (inclusive) as given to ``--ids``; ValueError says what is wrong."""
    low, sep, high = text.partition(":")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise ValueError(f"--ids must look like LOW:HIGH, e.g. 1:5000; got {text!r}")
    found = IdRange(int(low), int(high))
    if found.low > found.high:
        raise ValueError(f"--ids {text}: LOW is larger than HIGH")
    return found


@dataclass(frozen=True, slots=True)
class SnapshotOptions:
    chunk_size: int = 500
    blogs: tuple[int, ...] = ()
    post_types: tuple[str, ...] = ()
    ids: IdRange | None = None
    dry_run: bool = False
    force: bool = False

    @property
    def limited(self) -> bool:
        """A limited snapshot re-emits some posts; only a full one is the initial load."""
        return bool(self.blogs or self.post_types or self.ids)

    @property
    def reason(self) -> Literal["initial", "requested"]:
        return "requested" if self.limited else "initial"


class Start(enum.Enum):
    FRESH = "fresh"  # a new full snapshot: state file, then the checkpoint
    RESUME = "resume"  # the unfinished full snapshot in the state file goes on
    LIMITED = "limited"  # a re-emit: neither state file nor checkpoint


class SnapshotRefused(ConfigError):
    """A full snapshot would replace an existing streaming checkpoint; exit 2."""


def decide_start(
    options: SnapshotOptions, *, checkpoint: Path | None, state: SnapshotState | None
) -> Start:
    """Start, resume or refuse. ``checkpoint`` is the existing streaming checkpoint's
    path (None without one), ``state`` the state file's content."""
    if options.limited:
        return Start.LIMITED
    if state is not None and not state.done and not options.force:
        return Start.RESUME
    if checkpoint is not None and not options.force:
        raise SnapshotRefused(
            f"a streaming checkpoint exists ({checkpoint}). A full snapshot restarts "
            "streaming from its own position and replaces it, and consumers receive every "
            "post again: pass --force for that. To re-emit posts while `wpcdc run` streams, "
            "use `wpcdc resnapshot`; to re-emit some posts without touching the checkpoint, "
            "limit the snapshot with --blog, --post-type or --ids."
        )
    return Start.FRESH


def select_blogs(found: Sequence[int], requested: Sequence[int]) -> tuple[int, ...]:
    """The blogs to read: all found, or the requested ones (ConfigError for a missing one)."""
    if not requested:
        return tuple(sorted(found))
    missing = sorted(set(requested) - set(found))
    if missing:
        raise ConfigError(
            f"--blog {', '.join(map(str, missing))}: no such blog "
            f"(found: {', '.join(map(str, sorted(found))) or 'none'}; check mysql.table_prefix)"
        )
    return tuple(sorted(set(requested)))


def non_transactional(engines: dict[str, str]) -> list[str]:
    """Tables whose rows a consistent snapshot cannot isolate, as "table (ENGINE)"."""
    return sorted(
        f"{table} ({engine or 'no engine'})"
        for table, engine in engines.items()
        if engine.lower() not in TRANSACTIONAL_ENGINES
    )


# --- the state of a full snapshot ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """Posts ``low``..``high`` of a blog were read at ``position``; their events are acked."""

    blog_id: int
    low: int
    high: int
    position: Position


@dataclass(frozen=True, slots=True)
class InFlight:
    """A chunk whose events were being sent: some may be on the topic already."""

    blog_id: int
    after_id: int
    position: Position
    post_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Gone:
    """A post perhaps sent from a chunk in flight at ``position`` that a later read
    no longer found: its changes from ``position`` on must stream."""

    blog_id: int
    post_id: int
    position: Position


@dataclass(frozen=True, slots=True)
class SnapshotState:
    """A full snapshot's progress. ``position`` is P, the first run's, which becomes the
    streaming checkpoint. Transitions return a new state; the file gets each one."""

    position: Position
    blogs: tuple[int, ...]
    segments: tuple[Segment, ...] = ()
    in_flight: tuple[InFlight, ...] = ()
    gone: tuple[Gone, ...] = ()
    # Events acknowledged so far, over all runs (for progress).
    emitted: int = 0
    done: bool = False

    def after_id(self, blog_id: int) -> int | None:
        """Where the blog's next chunk starts (IDs above this), None once it is complete."""
        highs = [s.high for s in self.segments if s.blog_id == blog_id]
        if not highs:
            return 0
        high = max(highs)
        return None if high == MAX_POST_ID else high

    @property
    def complete(self) -> bool:
        return all(self.after_id(blog) is None for blog in self.blogs)

    def with_blogs(self, blogs: Sequence[int]) -> SnapshotState:
        """The blogs found now (a resume also loads a blog created since P)."""
        return replace(self, blogs=tuple(sorted(blogs)))

    def chunk_sent(
        self, blog_id: int, after_id: int, position: Position, post_ids: Sequence[int]
    ) -> SnapshotState:
        """Before sending: note what may reach the topic should the run be killed."""
        mine = InFlight(blog_id, after_id, position, tuple(post_ids))
        others = tuple(r for r in self.in_flight if not _same_chunk(r, mine))
        return replace(self, in_flight=(*others, mine))

    def chunk_acknowledged(
        self,
        blog_id: int,
        after_id: int,
        high: int,
        position: Position,
        post_ids: Sequence[int],
    ) -> SnapshotState:
        """Every event of the chunk (IDs ``after_id``+1..``high``, read at ``position``,
        ``post_ids`` sent) was acknowledged."""
        expected = self.after_id(blog_id)
        if expected != after_id:
            raise ValueError(
                f"blog {blog_id}: chunk after {after_id} acknowledged, expected {expected}"
            )
        sent = set(post_ids)
        mine = InFlight(blog_id, after_id, position, ())
        gone = {(g.blog_id, g.post_id): g for g in self.gone}
        in_flight: list[InFlight] = []
        for record in self.in_flight:
            if _same_chunk(record, mine):
                continue
            if record.blog_id != blog_id:
                in_flight.append(record)
                continue
            inside = [i for i in record.post_ids if after_id < i <= high]
            for post_id in inside:
                if post_id in sent:
                    continue  # sent again now, from a newer read: that one is last
                earlier = gone.get((blog_id, post_id))
                if earlier is None or earlier.position.key() < record.position.key():
                    gone[(blog_id, post_id)] = Gone(blog_id, post_id, record.position)
            rest = tuple(i for i in record.post_ids if not after_id < i <= high)
            if rest:
                in_flight.append(replace(record, post_ids=rest))
        segments = list(self.segments)
        last = max(
            (s for s in segments if s.blog_id == blog_id), key=lambda s: s.high, default=None
        )
        if last is not None and last.position.key() == position.key() and last.high == after_id:
            segments[segments.index(last)] = replace(last, high=high)
        else:
            segments.append(Segment(blog_id, after_id + 1, high, position))
        return replace(
            self,
            segments=tuple(segments),
            in_flight=tuple(in_flight),
            gone=tuple(sorted(gone.values(), key=lambda g: (g.blog_id, g.post_id))),
            emitted=self.emitted + len(sent),
        )

    def finished(self) -> SnapshotState:
        if not self.complete:
            raise ValueError("the snapshot has blogs left to read")
        return replace(self, done=True, in_flight=())

    # --- the file format ---

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "version": STATE_FORMAT_VERSION,
                "position": self.position.to_dict(),
                "blogs": list(self.blogs),
                "segments": [
                    [s.blog_id, s.low, s.high, s.position.to_dict()] for s in self.segments
                ],
                "in_flight": [
                    [r.blog_id, r.after_id, r.position.to_dict(), list(r.post_ids)]
                    for r in self.in_flight
                ],
                "gone": [[g.blog_id, g.post_id, g.position.to_dict()] for g in self.gone],
                "emitted": self.emitted,
                "done": self.done,
            },
            option=orjson.OPT_INDENT_2,
        )

    @classmethod
    def from_json(cls, raw: bytes) -> SnapshotState:
        data: Any = orjson.loads(raw)
        if not isinstance(data, dict) or data.get("version") != STATE_FORMAT_VERSION:
            raise ValueError(f"unsupported format (want version {STATE_FORMAT_VERSION})")
        position = Position.from_dict
        return cls(
            position=position(data["position"]),
            blogs=tuple(int(b) for b in data["blogs"]),
            segments=tuple(
                Segment(int(b), int(low), int(high), position(p))
                for b, low, high, p in data["segments"]
            ),
            in_flight=tuple(
                InFlight(int(b), int(after), position(p), tuple(int(i) for i in ids))
                for b, after, p, ids in data["in_flight"]
            ),
            gone=tuple(Gone(int(b), int(i), position(p)) for b, i, p in data["gone"]),
            emitted=int(data["emitted"]),
            done=bool(data["done"]),
        )


def _same_chunk(a: InFlight, b: InFlight) -> bool:
    return (a.blog_id, a.after_id, a.position.key()) == (b.blog_id, b.after_id, b.position.key())


def covered_through(position: Position) -> Coordinate:
    """The last coordinate before ``position``: the row changes a read there already holds."""
    return Coordinate(file_index(position.file), position.pos - 1, 2**31)


def covered_ranges(state: SnapshotState) -> tuple[CoveredRange, ...]:
    """The posts read later than P, with the changes before their read to skip."""
    start = state.position.key()
    ranges: list[CoveredRange] = []
    for segment in state.segments:
        if segment.position.key() == start:
            continue
        through = covered_through(segment.position)
        low = segment.low
        holes = sorted(
            g.post_id
            for g in state.gone
            if g.blog_id == segment.blog_id and segment.low <= g.post_id <= segment.high
        )
        for hole in holes:
            if low < hole:
                ranges.append(CoveredRange(segment.blog_id, low, hole - 1, through))
            low = hole + 1
        if low <= segment.high:
            ranges.append(CoveredRange(segment.blog_id, low, segment.high, through))
    for gone in state.gone:
        # Its last possible snapshot on the topic was read at gone.position.
        if gone.position.key() != start:
            ranges.append(
                CoveredRange(
                    gone.blog_id, gone.post_id, gone.post_id, covered_through(gone.position)
                )
            )
    return tuple(sorted(ranges, key=lambda r: (r.blog_id, r.low)))


def final_checkpoint(state: SnapshotState) -> Checkpoint:
    """The streaming checkpoint a completed snapshot leaves: P, and the covered ranges."""
    return Checkpoint(position=state.position, covered_ranges=covered_ranges(state))


# --- the state file ------------------------------------------------------------------


def state_path(checkpoint_path: Path) -> Path:
    """Where a full snapshot keeps its progress: beside the checkpoint, on the same volume."""
    return checkpoint_path.with_name(checkpoint_path.name + ".snapshot")


class SnapshotStateFile(JsonFile["SnapshotState"]):
    """The state of a full snapshot as a JSON file, written atomically."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            path,
            what="snapshot state",
            parse=SnapshotState.from_json,
            dump=SnapshotState.to_json,
            when_damaged="Move it away and run `wpcdc snapshot --force` to load every post again.",
        )


class SnapshotUnfinished(WpcdcError):
    """`wpcdc run` was started while a full snapshot is incomplete; exit 1."""


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


# --- progress ------------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    seconds = max(round(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(slots=True)
class Progress:
    """Posts done of the total, and the rate of this run; pure (the caller passes the time)."""

    total: int
    done: int
    started_at: float
    done_at_start: int = 0

    def rate(self, now: float) -> float:
        elapsed = now - self.started_at
        return (self.done - self.done_at_start) / elapsed if elapsed > 0 else 0.0

    def eta(self, now: float) -> float | None:
        rate = self.rate(now)
        return max(self.total - self.done, 0) / rate if rate > 0 else None

    def line(self, now: float) -> str:
        share = self.done / self.total if self.total else 1.0
        eta = self.eta(now)
        return (
            f"{self.done:,}/{self.total:,} posts ({share:.0%})  {self.rate(now):,.0f} posts/s  "
            f"ETA {format_duration(eta) if eta is not None else '?'}"
        )

    def bar(self, width: int = 24) -> str:
        share = min(self.done / self.total, 1.0) if self.total else 1.0
        filled = int(share * width)
        return "[" + "#" * filled + "-" * (width - filled) + "]"


class ProgressReporter(Protocol):
    def start(self, total: int, done: int) -> None: ...

    def advance(self, done: int) -> None: ...

    def finish(self) -> None: ...


class TerminalProgress:
    """One line rewritten in place (carriage return), at most ten times a second."""

    def __init__(self, stream: TextIO, clock: Callable[[], float]) -> None:
        self._stream = stream
        self._clock = clock
        self._progress: Progress | None = None
        self._shown = float("-inf")

    def start(self, total: int, done: int) -> None:
        self._progress = Progress(total, done, self._clock(), done)
        self._show(force=True)

    def advance(self, done: int) -> None:
        if self._progress is not None:
            self._progress.done = done
            self._show()

    def finish(self) -> None:
        if self._progress is not None:
            self._show(force=True)
            self._stream.write("\n")
            self._stream.flush()

    def _show(self, force: bool = False) -> None:
        now = self._clock()
        if self._progress is None or (not force and now - self._shown < 0.1):
            return
        self._shown = now
        line = f"snapshot {self._progress.bar()} {self._progress.line(now)}"
        # Padding wipes what a longer previous line left.
        self._stream.write("\r" + line.ljust(100))
        self._stream.flush()


class LogProgress:
    """A log line every ``interval`` seconds, for logs that are not a terminal."""

    def __init__(self, clock: Callable[[], float], interval: float) -> None:
        self._clock = clock
        self._interval = interval
        self._progress: Progress | None = None
        self._logged = float("-inf")

    def start(self, total: int, done: int) -> None:
        self._progress = Progress(total, done, self._clock(), done)
        self._logged = self._clock()
        log.info("snapshot: %s", self._progress.line(self._logged))

    def advance(self, done: int) -> None:
        if self._progress is None:
            return
        self._progress.done = done
        now = self._clock()
        if now - self._logged >= self._interval:
            self._logged = now
            log.info("snapshot: %s", self._progress.line(now))

    def finish(self) -> None:
        if self._progress is not None:
            log.info("snapshot: %s", self._progress.line(self._clock()))


# --- the run -------------------------------------------------------------------------


class ConsistentRead(Protocol):
    """One consistent-snapshot transaction (wpcdc.mysql.database.ConsistentSnapshot); blocking."""

    @property
    def point(self) -> SnapshotPoint: ...

    def blogs(self) -> list[int]: ...

    def table_engines(self, blogs: Sequence[int]) -> dict[str, str]: ...

    def count(
        self,
        blog_id: int,
        *,
        after_id: int = 0,
        max_id: int | None = None,
        post_types: Sequence[str] | None = None,
    ) -> int: ...

    def chunk(
        self,
        blog_id: int,
        *,
        after_id: int,
        limit: int,
        max_id: int | None = None,
        post_types: Sequence[str] | None = None,
    ) -> list[PostBundle]: ...

    def close(self) -> None: ...


class SnapshotInterrupted(WpcdcError):
    """Stopped by a signal between chunks; a rerun continues (full snapshots)."""


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


class Snapshotter:
    """Runs one snapshot: read chunks at one position, send, save progress after acks.

    ``open_read`` opens the consistent snapshot (blocking; run in a thread), the
    sink needs to be started by the caller, ``state_file`` and ``checkpoints``
    are only used by full snapshots. ``stop`` set (by a signal) ends the run
    between two chunks with SnapshotInterrupted.
    """

    def __init__(
        self,
        *,
        open_read: Callable[[], ConsistentRead],
        sink: Sink | None,
        options: SnapshotOptions,
        start: Start,
        fold: FoldConfig,
        source_name: str,
        state_file: SnapshotStateFile | None,
        checkpoints: CheckpointStore | None,
        progress: ProgressReporter,
        state: SnapshotState | None = None,
        stop: asyncio.Event | None = None,
    ) -> None:
        if start is not Start.LIMITED and not options.dry_run:
            assert state_file is not None and checkpoints is not None
        if start is Start.RESUME:
            assert state is not None
        self._open_read = open_read
        self._sink = sink
        self._options = options
        self._start = start
        self._fold = fold
        self._source = source_name
        self._state_file = state_file
        self._checkpoints = checkpoints
        self._progress = progress
        self._state = state if start is Start.RESUME else None
        self._stop = stop or asyncio.Event()
        self._events = 0
        self._oversize = 0
        self._meta_errors = 0
        self._chunks = 0

    async def run(self) -> SnapshotResult:
        read = await asyncio.to_thread(self._open_read)
        try:
            return await self._run(read)
        finally:
            await asyncio.to_thread(read.close)

    async def _run(self, read: ConsistentRead) -> SnapshotResult:
        point = read.point
        found = await asyncio.to_thread(read.blogs)
        blogs = select_blogs(found, self._options.blogs)
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
        if self._start is Start.RESUME:
            assert self._state is not None
            log.info(
                "resuming the snapshot taken at %s: the remaining posts are read at %s",
                self._state.position,
                point.position,
            )
            self._state = self._state.with_blogs(blogs)
        elif self._start is Start.FRESH and not self._options.dry_run:
            self._state = SnapshotState(position=point.position, blogs=blogs)
        plans = await asyncio.to_thread(self._plan, read, blogs)
        result = SnapshotResult(
            start=self._start,
            read_at=point.position,
            plans=plans,
            dry_run=self._options.dry_run,
            locking=point.method,
            locked_seconds=point.locked_seconds,
        )
        if self._options.dry_run:
            return result
        if self._state is not None:
            self._save()
        done_before = self._state.emitted if self._state is not None else 0
        self._progress.start(done_before + sum(p.posts for p in plans), done_before)
        try:
            for plan in plans:
                await self._read_blog(read, plan)
        finally:
            self._progress.finish()
        checkpoint = None
        if self._state is not None:
            self._state = self._state.finished()
            checkpoint = final_checkpoint(self._state)
            assert self._checkpoints is not None
            # Checkpoint first: killed between the two, a rerun resumes with
            # nothing left to read and writes the same checkpoint again.
            self._checkpoints.save(checkpoint)
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
        ids = self._options.ids
        for blog in blogs:
            if self._state is not None:
                after = self._state.after_id(blog)
                if after is None:
                    continue  # completed in an earlier run
            else:
                after = max(ids.low - 1, 0) if ids is not None else 0
            posts = read.count(
                blog,
                after_id=after,
                max_id=ids.high if ids is not None else None,
                post_types=self._options.post_types or None,
            )
            plans.append(BlogPlan(blog, after, posts))
        return tuple(plans)

    async def _read_blog(self, read: ConsistentRead, plan: BlogPlan) -> None:
        limit = self._options.chunk_size
        max_id = self._options.ids.high if self._options.ids is not None else None
        post_types = self._options.post_types or None

        def fetch(after: int) -> asyncio.Future[list[PostBundle]]:
            return asyncio.ensure_future(
                asyncio.to_thread(
                    read.chunk,
                    plan.blog_id,
                    after_id=after,
                    limit=limit,
                    max_id=max_id,
                    post_types=post_types,
                )
            )

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
                            if self._state is not None
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
                config=self._fold,
                reason=self._options.reason,
            )
            for bundle in bundles
            if wanted(bundle, self._fold)
        ]
        post_ids = [event.post_id for event in events]
        if self._state is not None:
            self._state = self._state.chunk_sent(blog_id, after, point.position, post_ids)
            self._save()
        await self._send(events)
        self._chunks += 1
        self._events += len(events)
        if self._state is not None:
            self._state = self._state.chunk_acknowledged(
                blog_id, after, high, point.position, post_ids
            )
            self._save()
            self._progress.advance(self._state.emitted)
        else:
            self._progress.advance(self._events)

    async def _send(self, events: list[Event]) -> None:
        """Send the events and wait until the broker acknowledged every one."""
        sink = self._sink
        assert sink is not None
        deliveries = []
        for event in events:
            headers: Headers = [CONTENT_TYPE_HEADER, ("ce_type", event.type.encode())]
            limit = sink.max_value_size(event.key, headers)
            value, omitted = fit(event, self._source, limit)
            if omitted:
                self._oversize += 1
                log.warning(
                    "event %s exceeds kafka.max_message_bytes: sent without %s",
                    event.id,
                    ", ".join(omitted),
                )
            if isinstance(event.data, SnapshotData):
                self._meta_errors += sum(1 for m in event.data.meta if m.error is not None)
            deliveries.append(await sink.send(event.key, value, headers))
        if deliveries:
            # DeliveryFailed from the first failed one; the progress is not saved.
            await asyncio.gather(*deliveries)

    def _save(self) -> None:
        assert self._state_file is not None and self._state is not None
        self._state_file.save(self._state)


def describe_result(
    result: SnapshotResult, *, topic: str, checkpoint: Path, refusal: str = ""
) -> str:
    """What the snapshot did (or, for a dry run, would do), for the operator."""
    posts = sum(p.posts for p in result.plans)
    per_blog = ", ".join(f"blog {p.blog_id}: {p.posts:,}" for p in result.plans) or "none left"
    lines = []
    if result.dry_run:
        lines.append(
            f"dry run: would emit {posts:,} post_snapshot events ({per_blog}), read at "
            f"{result.read_at}, to topic {topic}"
        )
        if result.start is Start.RESUME:
            lines.append("it would continue the unfinished snapshot: these are the posts left")
        elif result.start is Start.FRESH:
            lines.append(f"then save the checkpoint {checkpoint} at {result.read_at}")
        else:
            lines.append("a limited snapshot: the checkpoint would stay as it is")
        if refusal:
            lines.append(f"but the real run would be refused: {refusal}")
        return "\n".join(lines)
    lines.append(
        f"emitted {result.events:,} post_snapshot events ({per_blog}), read at "
        f"{result.read_at}, to topic {topic} in {result.chunks:,} chunks"
    )
    if result.oversize:
        lines.append(
            f"{result.oversize:,} events were larger than kafka.max_message_bytes: sent "
            "without bodies or values (data.omitted says what)"
        )
    if result.meta_errors:
        lines.append(f"{result.meta_errors:,} meta values did not decode: sent raw, flagged")
    if result.checkpoint is None:
        lines.append("a limited snapshot: the checkpoint is unchanged")
    else:
        covered = len(result.checkpoint.covered_ranges)
        lines.append(
            f"checkpoint {checkpoint} saved at {result.checkpoint.position}"
            + (f" with {covered} covered ranges (posts read on resume)" if covered else "")
            + ": `wpcdc run` streams every change from there"
        )
    return "\n".join(lines)

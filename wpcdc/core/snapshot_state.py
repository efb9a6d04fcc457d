"""What ``wpcdc snapshot`` reads, whether it starts, and how far a full one has come.

This module owns the snapshot's decisions:

* what to read: every blog, or a limited selection (:class:`SnapshotOptions`:
  ``--blog``, ``--post-type``, ``--ids``), in primary-key chunks, and whether
  to start, resume or refuse (:func:`decide_start`);
* the progress of a full snapshot (:class:`SnapshotState`): the blogs and the
  ID ranges whose events the broker acknowledged, each with the position it
  was read at, and its file format;
* the streaming checkpoint a completed one becomes (:func:`final_checkpoint`).

Resume. A full snapshot reads every blog inside one consistent-snapshot
transaction at P. Killed, it leaves its state: the rerun opens a new consistent
snapshot at P2 and reads only the rest there. The streaming checkpoint stays P
(the posts loaded at P must get every change after P) with *covered ranges* for
the posts read at P2: the fold skips their changes before P2, which their
snapshot already holds, so no older state lands after a newer one in their
partition (promise "per-post order", docs/ARCHITECTURE.md).

One chunk may have been in flight at the kill: some of its events may be on the
topic although its progress was not saved. The rerun sends those posts again
(read at P2: other ids, later sequences). A post of that chunk that the rerun no
longer finds (deleted in between) is left out of the covered ranges, or covered
only up to the position it was sent at, so that its deletion streams (promise
"nothing missed").

Limited snapshots re-emit posts: no state, no checkpoint change. The run is
``wpcdc.runtime.snapshot``. Pure: no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal

from wpcdc.core.checkpoint import Checkpoint, CoveredRange, dump_versioned, load_versioned
from wpcdc.core.errors import ConfigError, SnapshotRefused
from wpcdc.core.positions import Coordinate, Position, file_index

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
        return dump_versioned(
            STATE_FORMAT_VERSION,
            position=self.position.to_dict(),
            blogs=list(self.blogs),
            segments=[[s.blog_id, s.low, s.high, s.position.to_dict()] for s in self.segments],
            in_flight=[
                [r.blog_id, r.after_id, r.position.to_dict(), list(r.post_ids)]
                for r in self.in_flight
            ],
            gone=[[g.blog_id, g.post_id, g.position.to_dict()] for g in self.gone],
            emitted=self.emitted,
            done=self.done,
        )

    @classmethod
    def from_json(cls, raw: bytes) -> SnapshotState:
        data = load_versioned(raw, STATE_FORMAT_VERSION, "format")
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

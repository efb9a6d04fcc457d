"""The ack tracker: which binlog position is safe to save as the checkpoint.

Promise "checkpoint after ack" (docs/ARCHITECTURE.md): a position is saved only
when every event derived from data before it has been acknowledged by the
broker. The checkpoint position is the earliest of
- the position after the last transaction the fold has consumed,
- the hold the caller passes: the start of the oldest transaction an open fold
  group depends on (``Folder.oldest_open``) or where an unfinished live
  re-snapshot was requested, whichever is older,
- the start of the oldest transaction an unacknowledged event comes from
  (:meth:`AckTracker.oldest_unacknowledged`),
which is always a transaction boundary. Acknowledged groups that reach past it
become ``covered`` markers, so a resume does not fold their changes again; in
the checkpoint's own transaction one coordinate, ``covered_rows``, stands for
every row change before the first one still open or unacknowledged, and the
markers are capped at ``MAX_MARKERS`` (the checkpoint of a transaction touching
100k posts stays small; a marker left out only makes the replay send an event a
consumer skips as not newer). Pure: no I/O, no clock.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

from wpcdc.core.checkpoint import Checkpoint, Covered, CoveredRange
from wpcdc.core.fold import ClosedGroup
from wpcdc.core.group import PostKey
from wpcdc.core.positions import Coordinate, Position

# At most this many covered markers are kept (and saved): a few hundred KB.
MAX_MARKERS = 10_000


@dataclass(slots=True)
class _InFlight:
    # What the tracker needs of a sent group, not the group: its events stay out
    # of memory once they are in the sink's batches.
    key: PostKey
    last: Coordinate
    first_timestamp: int
    first: Coordinate
    pending: int


class AckTracker:
    def __init__(
        self,
        covered: tuple[Covered, ...] = (),
        covered_ranges: tuple[CoveredRange, ...] = (),
        covered_rows: Coordinate | None = None,
    ) -> None:
        self._ids = itertools.count()
        self._in_flight: dict[int, _InFlight] = {}
        # (origin sort key, group id), lazily cleaned: entries of acked groups stay
        # until they reach the top.
        self._origins: list[tuple[tuple[int, int], int, Position]] = []
        # (first row change as a plain tuple, group id, first row change), cleaned the
        # same way; tuples compare in C, a Coordinate through its generated __lt__.
        # A Coordinate orders as its (file, pos, row): it is its own heap key.
        self._firsts: list[tuple[Coordinate, int]] = []
        self._through: dict[PostKey, Coordinate] = {
            (c.blog_id, c.post_id): c.through for c in covered
        }
        self._ranges = covered_ranges
        # What the resumed checkpoint said: those row changes stay acknowledged.
        self._resumed_rows = covered_rows

    @property
    def in_flight(self) -> int:
        """Groups with events sent but not all acknowledged."""
        return len(self._in_flight)

    def track(self, group: ClosedGroup) -> int:
        """Register a closed group whose events are about to be sent; returns its id."""
        group_id = next(self._ids)
        if group.events:
            # A group without a first row change (a re-snapshot) covers none of its transaction.
            first = group.first or Coordinate.of(group.origin, 0)
            self._in_flight[group_id] = _InFlight(
                (group.blog_id, group.post_id),
                group.last,
                group.first_timestamp,
                first,
                len(group.events),
            )
            heapq.heappush(self._origins, (group.origin.key(), group_id, group.origin))
            heapq.heappush(self._firsts, (first, group_id))
        return group_id

    def ack(self, group_id: int) -> None:
        """One event of the group was acknowledged by the broker."""
        entry = self._in_flight.get(group_id)
        if entry is None:
            raise KeyError(f"group {group_id} is not in flight")
        entry.pending -= 1
        if entry.pending == 0:
            del self._in_flight[group_id]
            known = self._through.get(entry.key)
            if known is None or known < entry.last:
                self._through[entry.key] = entry.last

    def oldest_unacknowledged(self) -> Position | None:
        """The start of the oldest transaction an unacknowledged event comes from."""
        while self._origins and self._origins[0][1] not in self._in_flight:
            heapq.heappop(self._origins)
        return self._origins[0][2] if self._origins else None

    def oldest_unacknowledged_timestamp(self) -> int | None:
        """The commit time of the first row change of the oldest unacknowledged group."""
        if self.oldest_unacknowledged() is None:
            return None
        return self._in_flight[self._origins[0][1]].first_timestamp

    def _oldest_first(self) -> Coordinate | None:
        while self._firsts and self._firsts[0][1] not in self._in_flight:
            heapq.heappop(self._firsts)
        return self._firsts[0][0] if self._firsts else None

    def checkpoint(
        self,
        consumed: Position,
        hold: Position | None,
        *,
        open_first: Coordinate | None = None,
        fed: Coordinate | None = None,
    ) -> Checkpoint:
        """The checkpoint to save now: before ``consumed`` (the fold's position),
        ``hold`` (the oldest position the caller still needs) and the oldest
        unacknowledged event. ``open_first`` is the first row change of the
        oldest open fold group, ``fed`` the last row change the fold took."""
        candidates = [consumed]
        if hold is not None:
            candidates.append(hold)
        oldest = self.oldest_unacknowledged()
        if oldest is not None:
            candidates.append(oldest)
        position = min(candidates, key=Position.key)
        start = Coordinate.of(position, 0)
        rows = self._covered_rows(start, open_first, fed)
        # Markers the position (or covered_rows) has passed can never matter again.
        through = {
            key: c for key, c in self._through.items() if c >= start and (rows is None or c > rows)
        }
        if len(through) > MAX_MARKERS:
            kept = sorted(through.items(), key=lambda item: item[1])[-MAX_MARKERS:]
            through = dict(kept)
        self._through = through
        covered = tuple(
            Covered(blog_id, post_id, c) for (blog_id, post_id), c in sorted(through.items())
        )
        self._ranges = tuple(r for r in self._ranges if r.through >= start)
        return Checkpoint(
            position=position, covered=covered, covered_ranges=self._ranges, covered_rows=rows
        )

    def _covered_rows(
        self, start: Coordinate, open_first: Coordinate | None, fed: Coordinate | None
    ) -> Coordinate | None:
        """The last row change of the checkpoint's transaction (starting at ``start``)
        before which every row change is in an acknowledged event, or None."""
        firsts = [c for c in (open_first, self._oldest_first()) if c is not None]
        if firsts:
            first = min(firsts)
            bound = (
                None if first.row == 0 else Coordinate(first.file_index, first.pos, first.row - 1)
            )
        else:
            bound = fed
        candidates = [
            c
            for c in (bound, self._resumed_rows)
            if c is not None and (c.file_index, c.pos) == (start.file_index, start.pos)
        ]
        return max(candidates) if candidates else None

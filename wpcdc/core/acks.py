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
become ``covered`` markers, so a resume does not fold their changes again.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

from wpcdc.core.checkpoint import Checkpoint, Covered, CoveredRange
from wpcdc.core.fold import ClosedGroup, PostKey
from wpcdc.core.positions import Coordinate, Position


@dataclass(slots=True)
class _InFlight:
    group: ClosedGroup
    pending: int


class AckTracker:
    def __init__(
        self, covered: tuple[Covered, ...] = (), covered_ranges: tuple[CoveredRange, ...] = ()
    ) -> None:
        self._ids = itertools.count()
        self._in_flight: dict[int, _InFlight] = {}
        # (origin sort key, group id), lazily cleaned: entries of acked groups stay
        # until they reach the top.
        self._origins: list[tuple[tuple[int, int], int, Position]] = []
        self._through: dict[PostKey, Coordinate] = {
            (c.blog_id, c.post_id): c.through for c in covered
        }
        self._ranges = covered_ranges

    @property
    def in_flight(self) -> int:
        """Groups with events sent but not all acknowledged."""
        return len(self._in_flight)

    def track(self, group: ClosedGroup) -> int:
        """Register a closed group whose events are about to be sent; returns its id."""
        group_id = next(self._ids)
        if group.events:
            self._in_flight[group_id] = _InFlight(group, len(group.events))
            heapq.heappush(self._origins, (group.origin.key(), group_id, group.origin))
        return group_id

    def ack(self, group_id: int) -> None:
        """One event of the group was acknowledged by the broker."""
        entry = self._in_flight.get(group_id)
        if entry is None:
            raise KeyError(f"group {group_id} is not in flight")
        entry.pending -= 1
        if entry.pending == 0:
            del self._in_flight[group_id]
            key = (entry.group.blog_id, entry.group.post_id)
            known = self._through.get(key)
            if known is None or known < entry.group.last:
                self._through[key] = entry.group.last

    def oldest_unacknowledged(self) -> Position | None:
        """The start of the oldest transaction an unacknowledged event comes from."""
        while self._origins and self._origins[0][1] not in self._in_flight:
            heapq.heappop(self._origins)
        return self._origins[0][2] if self._origins else None

    def checkpoint(self, consumed: Position, hold: Position | None) -> Checkpoint:
        """The checkpoint to save now: before ``consumed`` (the fold's position),
        ``hold`` (the oldest position the caller still needs) and the oldest
        unacknowledged event."""
        candidates = [consumed]
        if hold is not None:
            candidates.append(hold)
        oldest = self.oldest_unacknowledged()
        if oldest is not None:
            candidates.append(oldest)
        position = min(candidates, key=Position.key)
        start = Coordinate.of(position, 0)
        # Markers the position has passed can never matter again: forget them.
        self._through = {key: c for key, c in self._through.items() if c >= start}
        covered = tuple(
            Covered(blog_id, post_id, through)
            for (blog_id, post_id), through in sorted(self._through.items())
        )
        self._ranges = tuple(r for r in self._ranges if r.through >= start)
        return Checkpoint(position=position, covered=covered, covered_ranges=self._ranges)

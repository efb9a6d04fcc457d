"""Folding: WordPress row changes in, domain events out.

WordPress never opens a transaction: one save is 3-15 autocommitted
transactions. The fold therefore groups row changes by post (blog id, post id)
across transactions; when a group closes, ``wpcdc.core.derive`` turns it into
at most one event per kind: one post event (created / updated / a status
transition / deleted), one ``post_meta_changed`` and one ``taxonomy_changed``.
This module owns the grouping: which post a row change belongs to, which
changes are skipped as already acknowledged (the checkpoint's covered posts),
and when a group closes.

A group closes when
- a transaction commits more than ``window_seconds`` (binlog commit time) after
  the group's last change,
- another connection thread touches the same post (MySQL only: MariaDB writes
  no thread id for row transactions),
- it holds ``max_changes_per_group`` row changes, or more than
  ``max_open_groups`` groups are open (the least recently touched closes),
- the post row is deleted (at the end of that transaction),
- the source reports it is idle at the end of the binlog (nothing arrived for
  a heartbeat period, longer than the window).
All but the last depend on binlog content only, so a replay from a checkpoint
rebuilds the same groups and the same event ids. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from wpcdc.core.checkpoint import CoveredRange
from wpcdc.core.decode import text
from wpcdc.core.derive import derive
from wpcdc.core.events import Event, TermRef
from wpcdc.core.mirror import Mirror, PostInfo
from wpcdc.core.positions import Coordinate, Position
from wpcdc.core.rows import Op, Row, RowChange, TableKind, Transaction, TransactionPart

# term_relationships.object_id is a link id, not a post id, for this taxonomy.
LINK_TAXONOMY = "link_category"

PostKey = tuple[int, int]  # (blog_id, post_id)


@dataclass(frozen=True, slots=True)
class FoldConfig:
    window_seconds: int = 1
    max_changes_per_group: int = 1000
    max_open_groups: int = 1000
    ignored_meta_keys: frozenset[str] = frozenset()
    ignored_post_types: frozenset[str] = frozenset({"revision"})
    emit_auto_drafts: bool = False


@dataclass(slots=True)
class ClosedGroup:
    """A closed group and the events derived from it (possibly none)."""

    blog_id: int
    post_id: int
    origin: Position
    last: Coordinate
    events: list[Event]


@dataclass(slots=True)
class _Group:
    blog_id: int
    post_id: int
    owner: int | None
    origin: Position
    origin_gtid: str | None
    first: Coordinate
    last: Coordinate
    last_timestamp: int
    # What the mirror knew of the post when the group opened.
    info: PostInfo | None
    changes: int = 0
    post_seen: bool = False
    post_before: Row | None = None
    post_after: Row | None = None
    # meta_id -> [row before the group's first change of it, row after its last]
    meta: dict[int, list[Row | None]] = field(default_factory=dict)
    # term_taxonomy_id -> (net +1 added / -1 removed, the term as resolved then)
    terms: dict[int, tuple[int, TermRef]] = field(default_factory=dict)
    deleted: bool = False


class Folder:
    """Feeds on TransactionParts, returns the groups it closed, in close order."""

    def __init__(
        self,
        *,
        config: FoldConfig,
        mirror: Mirror,
        covered: Mapping[PostKey, Coordinate] | None = None,
        covered_ranges: Sequence[CoveredRange] = (),
    ) -> None:
        self._config = config
        self._mirror = mirror
        # Row changes already in acknowledged events (from the checkpoint): skipped.
        self._covered = dict(covered or {})
        self._covered_ranges = list(covered_ranges)
        # Open groups, least recently touched first.
        self._open: OrderedDict[PostKey, _Group] = OrderedDict()
        self._txn_start: Position | None = None
        self._close_at_commit: set[PostKey] = set()
        self.position: Position | None = None

    @property
    def open_groups(self) -> int:
        return len(self._open)

    def oldest_open(self) -> Position | None:
        """Where the oldest open group's first transaction starts (None when no group
        is open): a checkpoint must not pass it, its changes are not in any event yet."""
        if not self._open:
            return None
        return min((group.origin for group in self._open.values()), key=Position.key)

    def feed(self, part: TransactionPart) -> list[ClosedGroup]:
        closed: list[ClosedGroup] = []
        txn = part.transaction
        if txn.start != self._txn_start:
            self._txn_start = txn.start
            closed += self._close_expired(txn.timestamp)
        for change in part.changes:
            closed += self._apply(txn, change)
        if part.end is not None:
            self.position = part.end
            self._txn_start = None
            if self._config.window_seconds == 0:
                closed += self.close_all()
            else:
                for key in sorted(self._close_at_commit):
                    if key in self._open:
                        closed.append(self._close(key))
            self._close_at_commit.clear()
        return closed

    def idle(self) -> list[ClosedGroup]:
        """The source reached the end of the binlog and it stayed quiet: close all."""
        return self.close_all()

    def close_all(self) -> list[ClosedGroup]:
        return [self._close(key) for key in list(self._open)]

    def close_posts(self, keys: Iterable[PostKey]) -> list[ClosedGroup]:
        """Close the open groups of these posts (before a re-snapshot of them)."""
        return [self._close(key) for key in keys if key in self._open]

    def target(self, change: RowChange) -> PostKey | None:
        """The post a row change belongs to, or None when it produces no event."""
        return self._target(change)

    # --- grouping ----------------------------------------------------------------

    def _close_expired(self, timestamp: int) -> list[ClosedGroup]:
        window = self._config.window_seconds
        closed = []
        while self._open:
            key, group = next(iter(self._open.items()))
            if group.last_timestamp + window >= timestamp:
                break
            closed.append(self._close(key))
        return closed

    def _apply(self, txn: Transaction, change: RowChange) -> list[ClosedGroup]:
        closed: list[ClosedGroup] = []
        key = self._target(change)
        coordinate = txn.coordinate(change.row)
        if key is not None and self._already_acknowledged(key, coordinate):
            key = None
        if key is not None:
            group = self._open.get(key)
            if (
                group is not None
                and group.owner is not None
                and txn.thread_id is not None
                and group.owner != txn.thread_id
            ):
                closed.append(self._close(key))
                group = None
            if group is None:
                group = self._open_group(key, txn, coordinate)
            else:
                self._open.move_to_end(key)
            self._add(group, change, coordinate, txn.timestamp)
            if group.changes >= self._config.max_changes_per_group:
                closed.append(self._close(key))
            elif len(self._open) > self._config.max_open_groups:
                closed.append(self._close(next(iter(self._open))))
        # After the group looked at the mirror's earlier view of the post.
        self._mirror.apply(change)
        return closed

    def _target(self, change: RowChange) -> PostKey | None:
        """The post a row change belongs to, or None when it produces no event."""
        blog = change.table.blog_id
        row = change.image
        kind = change.table.kind
        if kind is TableKind.POSTS:
            post_id = int(row["ID"])
            post_type = text(row.get("post_type"))
        elif kind is TableKind.POSTMETA:
            post_id = int(row["post_id"])
            post_type = self._known_type(blog, post_id)
        elif kind is TableKind.TERM_RELATIONSHIPS:
            post_id = int(row["object_id"])
            term = self._mirror.term(blog, int(row["term_taxonomy_id"]))
            if term is not None and term[0].taxonomy == LINK_TAXONOMY:
                return None
            post_type = self._known_type(blog, post_id)
        else:
            return None  # lookups: they only feed the mirror
        if post_type in self._config.ignored_post_types:
            return None
        return (blog, post_id)

    def _known_type(self, blog: int, post_id: int) -> str | None:
        group = self._open.get((blog, post_id))
        if group is not None and group.post_seen:
            image = group.post_after or group.post_before
            if image is not None:
                return str(text(image.get("post_type")))
        info = self._mirror.post(blog, post_id)
        return info.type if info is not None else None

    def _already_acknowledged(self, key: PostKey, coordinate: Coordinate) -> bool:
        if self._covered_ranges and any(
            r.contains(*key) and coordinate <= r.through for r in self._covered_ranges
        ):
            return True
        through = self._covered.get(key)
        if through is None:
            return False
        if coordinate <= through:
            return True
        del self._covered[key]  # past it: nothing more to skip for this post
        return False

    def _open_group(self, key: PostKey, txn: Transaction, coordinate: Coordinate) -> _Group:
        group = _Group(
            blog_id=key[0],
            post_id=key[1],
            owner=txn.thread_id,
            origin=txn.start,
            origin_gtid=txn.gtid,
            first=coordinate,
            last=coordinate,
            last_timestamp=txn.timestamp,
            info=self._mirror.post(*key),
        )
        self._open[key] = group
        return group

    def _add(self, group: _Group, change: RowChange, coordinate: Coordinate, ts: int) -> None:
        group.changes += 1
        group.last = coordinate
        group.last_timestamp = max(group.last_timestamp, ts)
        kind = change.table.kind
        if kind is TableKind.POSTS:
            if not group.post_seen:
                group.post_seen = True
                group.post_before = change.before
            group.post_after = change.after
            if change.op is Op.DELETE:
                group.deleted = True
                self._close_at_commit.add((group.blog_id, group.post_id))
        elif kind is TableKind.POSTMETA:
            meta_id = int(change.image["meta_id"])
            entry = group.meta.get(meta_id)
            if entry is None:
                group.meta[meta_id] = [change.before, change.after]
            else:
                entry[1] = change.after
        elif kind is TableKind.TERM_RELATIONSHIPS:
            tt_id = int(change.image["term_taxonomy_id"])
            delta = {Op.INSERT: 1, Op.DELETE: -1}.get(change.op, 0)
            if change.op is Op.UPDATE and change.before is not None and change.after is not None:
                delta = 0  # term_order only: not a membership change
            net, term = group.terms.get(tt_id, (0, self._resolve(group.blog_id, tt_id)))
            group.terms[tt_id] = (net + delta, term)

    def _resolve(self, blog: int, tt_id: int) -> TermRef:
        found = self._mirror.term(blog, tt_id)
        if found is None:
            return TermRef(tt_id, None, None, None, None, resolved=False)
        info, name = found
        return TermRef(
            term_taxonomy_id=tt_id,
            taxonomy=info.taxonomy,
            term_id=info.term_id,
            slug=name.slug if name else None,
            name=name.name if name else None,
            resolved=name is not None,
        )

    # --- closing -------------------------------------------------------------------

    def _close(self, key: PostKey) -> ClosedGroup:
        group = self._open.pop(key)
        return ClosedGroup(
            blog_id=group.blog_id,
            post_id=group.post_id,
            origin=group.origin,
            last=group.last,
            events=derive(group, self._config),
        )

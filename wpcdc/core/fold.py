"""Folding: WordPress row changes in, domain events out.

WordPress never opens a transaction: one save is 3-15 autocommitted
transactions. The fold therefore groups row changes by post (blog id, post id)
across transactions (a term's rows by term, an author's by user, a blog's URL
options in the blog's own group, its menus' rows in one group: keys in
``wpcdc.core.group``); when a group
closes, ``wpcdc.core.derive`` turns it into at most one event per kind: one post event (created / updated / a status
transition / deleted), one ``post_meta_changed`` and one ``taxonomy_changed``.
This module owns the grouping: which post a row change belongs to, which
changes are skipped as already acknowledged (the checkpoint's covered posts),
and when a group closes.

A WordPress save is a burst of autocommitted transactions from one connection,
a few ms to ~200 ms long. A group closes when the burst ends, and always within
a bounded age and size:

- **quiet**: no change reached the group for ``quiet_seconds`` (time of
  arrival at wpcdc: while the reader is caught up that is the time of the
  commit, give or take the network);
- **age**: it has been open ``max_age_seconds``, however busy the post is (a
  view counter updated four times a second never holds back a title edit, nor
  the checkpoint);
- **binlog time**: a transaction commits more than ``window_seconds`` after
  the group's last change (binlog timestamps; this separates saves while a
  backlog is read faster than it was written);
- **connection**: another connection thread touches the post (MySQL only:
  MariaDB writes no thread id for row transactions);
- **bounds**: it holds ``max_changes_per_group`` row changes; more than
  ``max_open_groups`` groups are open or the open groups hold more than
  ``max_open_bytes`` of row images (the least recently touched close first), so
  memory stays bounded whatever the shape of a transaction;
- the post row is deleted (at the end of that transaction), or the source is
  idle at the end of the binlog.

Time-based rules make the grouping of a replay differ from the live run's. That
is harmless by construction (promise "recognisable replays",
docs/ARCHITECTURE.md): an event id names the group's first *and* last row
change, so the same id always means the same content, and an event's
``sequence`` is its last row change, the state it carries; a consumer that
applies, per post, only events newer than the last it applied ends in the
database's state whatever grouping a replay chose. Pure: no I/O; time comes in
as arguments (``now``, seconds on a monotonic clock).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from wpcdc.core.author_events import author_target
from wpcdc.core.checkpoint import CoveredChanges, CoveredRange
from wpcdc.core.decode import text
from wpcdc.core.derive import derive
from wpcdc.core.events import SITE_POST_ID, Event
from wpcdc.core.group import Group, PostKey, menus_key, resolve_term, row_bytes
from wpcdc.core.menu_events import MENU_ITEM_TYPE
from wpcdc.core.mirror import Mirror
from wpcdc.core.positions import Coordinate, Position, file_index
from wpcdc.core.rows import Op, RowChange, TableKind, Transaction, TransactionPart
from wpcdc.core.term_events import term_target

# term_relationships.object_id is a link id, not a post id, for this taxonomy.
LINK_TAXONOMY = "link_category"

_POSTMETA = TableKind.POSTMETA

# What a term_relationships row change does to the post's membership of the term.
_MEMBERSHIP_DELTA = {Op.INSERT: 1, Op.DELETE: -1}
_MEMBERSHIP_AFTER = {Op.INSERT: True, Op.DELETE: False}


@dataclass(frozen=True, slots=True)
class FoldConfig:
    window_seconds: int = 1
    quiet_seconds: float = 0.15
    max_age_seconds: float = 1.0
    max_changes_per_group: int = 1000
    max_open_groups: int = 1000
    max_open_bytes: int = 32 * 1024 * 1024
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
    # The group's first row change, and the commit time of its transaction.
    first: Coordinate | None = None
    first_timestamp: int = 0


class Folder:
    """Feeds on TransactionParts, returns the groups it closed, in close order."""

    def __init__(
        self,
        *,
        config: FoldConfig,
        mirror: Mirror,
        covered: Mapping[PostKey, Coordinate] | None = None,
        covered_ranges: Sequence[CoveredRange] = (),
        covered_rows: Coordinate | None = None,
        replay_until: Position | None = None,
    ) -> None:
        self._config = config
        # Row changes before this position were read by an earlier run, which may
        # have sent events of them before it stopped (None: a fresh start).
        self._replay_until = None if replay_until is None else Coordinate.of(replay_until, 0)
        self._mirror = mirror
        # Row changes already in acknowledged events (from the checkpoint): skipped.
        self._covered = CoveredChanges(covered, covered_ranges, covered_rows)
        # Open groups, least recently touched first.
        self._open: OrderedDict[PostKey, Group] = OrderedDict()
        # Open groups in the order they opened (oldest first), for the age rule:
        # (opened at, post, the group's opened_at as its identity). Entries of groups
        # closed since are dropped when they reach the front, or all at once when
        # they outnumber the open groups; no entry keeps a closed group's rows alive.
        self._opened: deque[tuple[float, PostKey]] = deque()
        self._open_bytes = 0
        self._txn_start: Position | None = None
        self._close_at_commit: set[PostKey] = set()
        # No group can go quiet or grow old before this (monotonic seconds): tick
        # returns at once until then. A lower bound, kept by tick (see there).
        self._due = float("-inf")
        self.position: Position | None = None
        # The last row change fed (None before the first).
        self.fed: Coordinate | None = None
        # Row changes fed, per table, since the fold was built (the stream's metrics).
        self.fed_rows: dict[TableKind, int] = dict.fromkeys(TableKind, 0)

    @property
    def mirror(self) -> Mirror:
        """The mirror the fold keeps current (re-snapshots read links from it)."""
        return self._mirror

    @property
    def open_groups(self) -> int:
        return len(self._open)

    @property
    def open_bytes(self) -> int:
        """Estimated memory held by the open groups' row images."""
        return self._open_bytes

    def oldest_open(self) -> Position | None:
        """Where the oldest open group's first transaction starts (None when no group
        is open): a checkpoint must not pass it, its changes are not in any event yet."""
        if not self._open:
            return None
        return min((group.origin for group in self._open.values()), key=Position.key)

    def oldest_open_first(self) -> tuple[Coordinate, int] | None:
        """The first row change of the oldest open group and its commit time."""
        if not self._open:
            return None
        group = min(self._open.values(), key=lambda g: g.first)
        return group.first, group.first_timestamp

    def feed(self, part: TransactionPart, now: float | None = None) -> list[ClosedGroup]:
        """Fold one transaction part that arrived at ``now`` (None: no time-based rules)."""
        closed = self.tick(now) if now is not None else []
        txn = part.transaction
        start = txn.start
        # A transaction's parts share its start: "is" answers for all but the first.
        if start is not self._txn_start and start != self._txn_start:
            self._txn_start = start
            if self._open:
                self._close_expired(txn.timestamp, closed)
        # The transaction's file index, parsed once: each row change only differs by row.
        index = file_index(start.file)
        for change in part.changes:
            self._apply(txn, change, Coordinate(index, start.pos, change.row), now, closed)
        if part.end is not None:
            self.position = part.end
            self._txn_start = None
            if self._config.window_seconds == 0:
                closed += self.close_all()
                self._close_at_commit.clear()
            elif self._close_at_commit:
                for key in sorted(self._close_at_commit):
                    if key in self._open:
                        closed.append(self._close(key))
                self._close_at_commit.clear()
        return closed

    def tick(self, now: float) -> list[ClosedGroup]:
        """Close the groups that went quiet or grew old by ``now``."""
        if now < self._due:
            return []  # called for every part read: most of the time, nothing is due
        closed: list[ClosedGroup] = []
        config = self._config
        quiet_since = now - config.quiet_seconds
        due = float("inf")
        # Least recently touched first: stop at the first one still busy.
        while self._open:
            key, group = next(iter(self._open.items()))
            if group.touched_at is None:
                due = float("-inf")  # touched with no time (tests): no bound known
                break
            if group.touched_at > quiet_since or self._reading(group):
                # The rest were touched later (or are in the transaction being read).
                due = group.touched_at + config.quiet_seconds
                break
            closed.append(self._close(key))
        opened_before = now - config.max_age_seconds
        while self._opened:
            opened_at, key = self._opened[0]
            aged = self._open.get(key)
            if aged is None or aged.opened_at != opened_at:
                self._opened.popleft()  # closed since
            elif opened_at <= opened_before and not self._reading(aged):
                self._opened.popleft()
                closed.append(self._close(key))
            else:
                due = min(due, opened_at + config.max_age_seconds)
                break
        # Nothing closes before ``due`` by these rules: the front group is the least
        # recently touched and the oldest entry the oldest opened, and whatever
        # happens until the next tick (touches, opens, closes) only moves them later,
        # as long as ``now`` never goes back (arrival times on a monotonic clock).
        self._due = due
        return closed

    def next_deadline(self) -> float | None:
        """When :meth:`tick` will next have a group to close (None: no timed group open)."""
        deadlines = []
        for group in self._open.values():  # only the least recently touched matters
            if group.touched_at is not None and not self._reading(group):
                deadlines.append(group.touched_at + self._config.quiet_seconds)
            break
        oldest = self._oldest_opened()
        if oldest is not None and not self._reading(oldest):
            deadlines.append(self._opened[0][0] + self._config.max_age_seconds)
        return min(deadlines) if deadlines else None

    def _oldest_opened(self) -> Group | None:
        while self._opened:
            opened_at, key = self._opened[0]
            group = self._open.get(key)
            if group is not None and group.opened_at == opened_at:
                return group
            self._opened.popleft()
        return None

    def _reading(self, group: Group) -> bool:
        """Whether the group's last transaction is the one still being read."""
        return self._txn_start is not None and group.txn == self._txn_start

    def idle(self, position: Position | None = None) -> list[ClosedGroup]:
        """The source reached the end of the binlog and it stayed quiet: close all.
        ``position``: where the source stands, between transactions; it may be past
        the last part's end (events that hold no transaction, after a FLUSH)."""
        if position is not None and (self.position is None or self.position < position):
            self.position = position
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

    def _close_expired(self, timestamp: int, closed: list[ClosedGroup]) -> None:
        window = self._config.window_seconds
        while self._open:
            key, group = next(iter(self._open.items()))
            if group.last_timestamp + window >= timestamp:
                break
            closed.append(self._close(key))

    def _apply(
        self,
        txn: Transaction,
        change: RowChange,
        coordinate: Coordinate,
        now: float | None,
        closed: list[ClosedGroup],
    ) -> None:
        """Fold one row change; the groups it closes are appended to ``closed``."""
        kind = change.table.kind
        self.fed_rows[kind] += 1
        key = self._target(change)
        self.fed = coordinate
        if (
            key is not None
            # Nothing left to skip after a resume: most of the time, and cheap to see.
            and self._covered.left
            and self._covered.skips(key, coordinate)
        ):
            key = None
        if key is not None:
            group = self._open.get(key)
            if group is not None and (
                (
                    group.owner is not None
                    and txn.thread_id is not None
                    and group.owner != txn.thread_id
                )
                or (
                    now is not None
                    and group.opened_at is not None
                    and now - group.opened_at >= self._config.max_age_seconds
                    and group.txn != txn.start
                )
            ):
                closed.append(self._close(key))
                group = None
            if group is None:
                group = self._open_group(key, txn, coordinate, now)
            else:
                self._open.move_to_end(key)
            self._add(group, change, coordinate, txn.timestamp)
            group.touched_at = now
            group.txn = txn.start
            config = self._config
            if group.changes >= config.max_changes_per_group:
                closed.append(self._close(key))
            while self._open and (
                len(self._open) > config.max_open_groups or self._open_bytes > config.max_open_bytes
            ):
                closed.append(self._close(next(iter(self._open))))
        # After the group looked at the mirror's earlier view of the post. Meta rows,
        # most of them, are nothing the mirror keeps: not even a call.
        if kind is not _POSTMETA:
            self._mirror.apply(change)

    def _target(self, change: RowChange) -> PostKey | None:
        """The group a row change belongs to (a post's; the blog's own for options; a
        term's or an author's, keys in wpcdc.core.group), or None when it produces no
        event. Posts, meta and memberships, most rows, are tried first."""
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
        elif kind is TableKind.OPTIONS:
            return (blog, SITE_POST_ID)  # URL settings: site_settings_changed
        elif kind is TableKind.TERMS or kind is TableKind.TERM_TAXONOMY:
            return term_target(change, self._mirror)  # a term's group, or a menu's
        elif kind is TableKind.USERS:
            return author_target(change)  # an author's (wpcdc.core.author_events)
        else:
            return None  # wpcdc's signal table
        if post_type in self._config.ignored_post_types:
            return None
        if post_type == MENU_ITEM_TYPE:
            return menus_key(blog)  # one group for the blog's menus (wpcdc.core.menu_events)
        return (blog, post_id)

    def _known_type(self, blog: int, post_id: int) -> str | None:
        group = self._open.get((blog, post_id))
        if group is not None and group.post_type is not None:
            return group.post_type  # the type its post row has in the group
        info = self._mirror.post(blog, post_id)
        return info.type if info is not None else None

    def _open_group(
        self, key: PostKey, txn: Transaction, coordinate: Coordinate, now: float | None
    ) -> Group:
        group = Group(
            blog_id=key[0],
            post_id=key[1],
            owner=txn.thread_id,
            origin=txn.start,
            origin_gtid=txn.gtid,
            first=coordinate,
            last=coordinate,
            first_timestamp=txn.timestamp,
            last_timestamp=txn.timestamp,
            info=self._mirror.post(*key) if key[1] > 0 and key[0] > 0 else None,
            opened_at=now,
            keeps_rows=key[1] < 0 or key[0] < 0,
        )
        if self._replay_until is not None:
            if coordinate < self._replay_until:
                group.replayed = True
            else:
                self._replay_until = None  # past it for good
        self._open[key] = group
        if now is not None:
            # The only way tick's bound can come earlier: a group opened when none was.
            config = self._config
            self._due = min(self._due, now + min(config.quiet_seconds, config.max_age_seconds))
            if len(self._opened) > 2 * len(self._open) + 64:
                # Mostly closed groups behind a long-lived one: keep the open ones.
                self._opened = deque(
                    sorted(
                        (g.opened_at, k) for k, g in self._open.items() if g.opened_at is not None
                    )
                )
            self._opened.append((now, key))
        return group

    def _add(self, group: Group, change: RowChange, coordinate: Coordinate, ts: int) -> None:
        size = change.size
        if size < 0:
            size = row_bytes(change.before) + row_bytes(change.after)
        group.size += size
        self._open_bytes += size
        group.changes += 1
        group.last = coordinate
        group.last_timestamp = max(group.last_timestamp, ts)
        kind = change.table.kind
        if group.keeps_rows:
            group.keep_row(change)  # a term's, an author's or a blog's menus' rows
        elif kind is TableKind.POSTS:
            if not group.post_seen:
                group.post_seen = True
                group.post_before = change.before
            group.post_after = change.after
            group.post_last = change.after or change.before
            image = group.post_after or group.post_before
            if image is not None:
                group.post_type = str(text(image.get("post_type")))
            if change.op is Op.DELETE:
                group.deleted = True
                self._close_at_commit.add((group.blog_id, group.post_id))
        elif kind is _POSTMETA:
            row = change.after if change.after is not None else change.before
            assert row is not None
            meta_id = int(row["meta_id"])
            entry = group.meta.get(meta_id)
            if entry is None:
                group.meta[meta_id] = [change.before, change.after]
            else:
                entry[1] = change.after
        elif kind is TableKind.TERM_RELATIONSHIPS:
            tt_id = int(change.image["term_taxonomy_id"])
            # An UPDATE changes term_order only: not a membership change.
            delta = _MEMBERSHIP_DELTA.get(change.op, 0)
            membership = group.terms.get(tt_id)
            if membership is None:
                membership = (0, resolve_term(self._mirror, group.blog_id, tt_id), False)
            net, term, present = membership
            present = _MEMBERSHIP_AFTER.get(change.op, present)
            group.terms[tt_id] = (net + delta, term, present)
        else:  # the blog's own group: options
            name = str(text(change.image.get("option_name")))
            option = group.options.get(name)
            if option is None:
                group.options[name] = [change.before, change.after]
            else:
                option[1] = change.after

    # --- closing -------------------------------------------------------------------

    def _close(self, key: PostKey) -> ClosedGroup:
        group = self._open.pop(key)
        self._open_bytes -= group.size
        return ClosedGroup(
            blog_id=group.blog_id,
            post_id=group.post_id,
            origin=group.origin,
            last=group.last,
            events=derive(group, self._config, self._mirror),
            first=group.first,
            first_timestamp=group.first_timestamp,
        )

"""Typed row changes: what the binlog source hands to the fold.

The source (the only module that speaks the replication protocol) turns binlog
row events on watched tables into these plain values; everything after it is
pure. Tables are classified by name: ``{prefix}posts`` is blog 1 (the main
site), ``{prefix}{N}_posts`` is multisite blog N. Pure: no I/O.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from wpcdc.core.positions import Position


class TableKind(enum.StrEnum):
    POSTS = "posts"
    POSTMETA = "postmeta"
    TERM_RELATIONSHIPS = "term_relationships"
    # Lookups: they feed the in-memory mirror that resolves term_taxonomy_id.
    TERM_TAXONOMY = "term_taxonomy"
    TERMS = "terms"
    # Site state for links (wpcdc.core.site): the named options of each blog,
    # and the network's users (``{prefix}users``, never per blog), only the
    # columns in KEEP_COLUMNS.
    OPTIONS = "options"
    USERS = "users"
    # wpcdc's own table ({prefix}wpcdc_signal, main site only): live re-snapshot
    # requests and their watermarks (see wpcdc.core.resnapshot).
    SIGNAL = "wpcdc_signal"


# The tables every WordPress site (and each multisite blog) has, that wpcdc needs
# to stream posts (the preflight requires them).
WORDPRESS_KINDS = (
    TableKind.POSTS,
    TableKind.POSTMETA,
    TableKind.TERM_RELATIONSHIPS,
    TableKind.TERM_TAXONOMY,
    TableKind.TERMS,
)

# The options that decide a blog's URLs (see wpcdc.core.permalinks). Every other
# row of {prefix}options (transients are most option writes) is dropped by
# `site_row` right after it is decoded, before anything is built from it.
WATCHED_OPTIONS: frozenset[str] = frozenset(
    {
        "home",
        "siteurl",
        "permalink_structure",
        "category_base",
        "tag_base",
        "show_on_front",
        "page_on_front",
        "page_for_posts",
        "default_category",
    }
)

# The only columns wpcdc keeps of these tables; a reader that can select columns
# decodes only these. {prefix}users: never the password hash, e-mail address or
# activation key.
KEEP_COLUMNS: dict[TableKind, tuple[str, ...]] = {
    TableKind.OPTIONS: ("option_name", "option_value"),
    TableKind.USERS: ("ID", "user_nicename", "display_name"),
}


def site_row(kind: TableKind, row: Row | None) -> Row | None:
    """The part of an options/users row wpcdc keeps: None for an option it does
    not watch (or no row), else only the KEEP_COLUMNS. Other kinds pass as they are."""
    if row is None:
        return None
    keep = KEEP_COLUMNS.get(kind)
    if keep is None:
        return row
    if kind is TableKind.OPTIONS:
        name = row.get("option_name")
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        if name not in WATCHED_OPTIONS:
            return None
    return {column: row.get(column) for column in keep}


@dataclass(frozen=True, slots=True)
class TableRef:
    blog_id: int
    kind: TableKind


@lru_cache(maxsize=64)
def _table_pattern(prefix: str) -> re.Pattern[str]:
    kinds = "|".join(kind.value for kind in TableKind)
    return re.compile(rf"^{re.escape(prefix)}(?:([1-9][0-9]*)_)?({kinds})$")


# Tables a multisite network has once (blog 1's prefix), not per blog.
_NETWORK_KINDS = frozenset({TableKind.SIGNAL, TableKind.USERS})


def classify_table(prefix: str, table: str) -> TableRef | None:
    """The blog and kind of a WordPress table, or None when wpcdc does not watch it."""
    match = _table_pattern(prefix).match(table)
    if match is None:
        return None
    blog = int(match.group(1)) if match.group(1) else 1
    if blog == 1 and match.group(1):
        return None  # wp_1_posts is not a WordPress table: blog 1 uses wp_posts
    kind = TableKind(match.group(2))
    if kind in _NETWORK_KINDS and match.group(1):
        return None  # one table for the whole network
    return TableRef(blog_id=blog, kind=kind)


def table_name(prefix: str, ref: TableRef) -> str:
    return f"{prefix}{ref.kind}" if ref.blog_id == 1 else f"{prefix}{ref.blog_id}_{ref.kind}"


class Op(enum.StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


Row = Mapping[str, Any]

# _HOT: RowChange, Transaction and TransactionPart are values, never changed once
# built, but not frozen dataclasses: several are built per row change read, and a
# frozen dataclass costs about three times as much to build (each field goes
# through object.__setattr__). They hash by value as frozen ones would.


@dataclass(slots=True, unsafe_hash=True)  # not frozen: see _HOT below
class RowChange:
    """One before/after row image. ``before`` is None for inserts, ``after`` for deletes."""

    table: TableRef
    op: Op
    before: Row | None
    after: Row | None
    # Index among the transaction's row changes on watched tables.
    row: int
    # What its row images cost in memory (wpcdc.core.group.row_bytes), when the
    # source estimated it from the binlog; -1: the fold works it out from the images.
    size: int = field(default=-1, compare=False)

    @property
    def image(self) -> Row:
        """The row as it is after the change, or as it was before a delete."""
        image = self.after if self.after is not None else self.before
        assert image is not None
        return image


@dataclass(slots=True, unsafe_hash=True)  # not frozen: see _HOT below
class Transaction:
    """What the binlog says about one transaction, apart from its row changes."""

    start: Position
    # The transaction's own GTID ("0-1-42" on MariaDB, "uuid:42" on MySQL), if any.
    gtid: str | None
    # Connection thread of the BEGIN query event. MySQL writes one; MariaDB
    # writes a GTID event instead of BEGIN, which carries no thread id: None.
    thread_id: int | None
    # Commit time, seconds since the epoch, from the binlog event header.
    timestamp: int


@dataclass(slots=True, unsafe_hash=True)  # not frozen: see _HOT below
class TransactionPart:
    """Row changes of one transaction, in order. A large transaction arrives in
    several parts so that memory stays bounded; the last part carries ``end``,
    the position after the commit (where a resume skips this transaction)."""

    transaction: Transaction
    changes: tuple[RowChange, ...]
    end: Position | None = None


@dataclass(frozen=True, slots=True)
class Idle:
    """The source has reached the end of the binlog and nothing new arrived for a
    while (a server heartbeat). ``wall_time`` is the source's clock reading."""

    position: Position
    wall_time: float


SourceItem = TransactionPart | Idle


# --- steps: how a source that never blocks says what it waits for ------------------
# BinlogSource.steps() yields these between its items instead of blocking, so that
# one thread (the asyncio loop's) can both read the binlog and send events
# (wpcdc.runtime.handoff.LoopReader); BinlogSource.items() waits on them itself.


@dataclass(slots=True)
class Wait:
    """The source needs more bytes from ``sock`` (a socket, never read here): resume
    it once the socket is readable, or at ``deadline`` (``time.monotonic()``; None:
    no deadline), when it decides whether the read timed out."""

    sock: Any
    deadline: float | None


class Blocking:
    """The source's next step may block (connecting, a backoff wait): run it where
    blocking harms nothing, e.g. in a worker thread."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "BLOCKING"


BLOCKING = Blocking()

SourceStep = SourceItem | Wait | Blocking
